"""Policy plugins: every one answers with a distribution over the valid joint actions."""
