"""gunicorn settings for Prometheus metrics across several worker processes.

    PROMETHEUS_MULTIPROC_DIR=/run/promotions-metrics \\
        gunicorn -c python:promotions_site.gunicorn_conf promotions_site.wsgi:application --workers 4

With `PROMETHEUS_MULTIPROC_DIR` set, every worker writes its samples to files in that directory and
`/metrics` (answered by any worker) adds them all up. The master empties the directory of sample
files when it starts (stale samples of a previous run would be added in) and tells prometheus_client
when a worker exits, so its live gauges stop counting. Without the variable these hooks do nothing.
Other gunicorn settings come from the command line as usual.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# The files prometheus_client's multiprocess mode writes: counter_<pid>.db, histogram_<pid>.db, ...
_SAMPLE_FILE = re.compile(r"^(counter|histogram|summary|gauge_[a-z]+)_\d+\.db$")


def on_starting(server) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for file in path.iterdir():
        if _SAMPLE_FILE.match(file.name):
            file.unlink(missing_ok=True)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
