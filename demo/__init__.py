"""The main job: ``planner demo`` (the whole loop on the embedded world) and its report."""
