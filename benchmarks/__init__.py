"""Scripts that print figures (not tests). Run them from the repository's root as modules,
``.venv/bin/python -m benchmarks.run``, so that they import ``imstags``, ``tests.support`` and
each other like any other code."""
