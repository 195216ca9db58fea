"""The best-of-K outcome bench: K candidate plans per issue, run, judged and logged.

- :mod:`.records`: the records the bench reads and writes (cases, the candidate log's lines,
  settings and their hash, per-issue results);
- :mod:`.cases`: where the issues come from (a kernel root, the embedded world, a file);
- :mod:`.log`: the append-only candidate log that makes a bench resumable and lossless;
- :mod:`.budget`: the per-issue and whole-bench budgets in candidate-minutes;
- :mod:`.runner`: sampling, scheduling on a bounded pool, selection, the outputs;
- :mod:`.results`: the output files in our shape and the field's, and reading both back.

No torch and no engine imports here: executors, samplers and selectors are plugins.
"""
