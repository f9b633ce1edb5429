"""``python -m bench``: the project's batch engines against the reference libraries' per-row loops, measured together."""

import os

# One core per process, as a Celery worker runs (tests.stack sets the same for the workers), for every entry point
# (python -m bench, python -m bench.platform, python -m bench.jobs): set before numpy is first imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
