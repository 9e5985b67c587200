"""Benchmark: the load run of ``bench_load.py`` as a soak — 100 concurrent clients mixing vector
tiles, feature items and map pages for 5 minutes on one worker.

Same method, request mix and targets as ``bench_load.py`` (zero errors; p50/p99 per kind;
memory stable: server RSS growth over the second half <= 50 MB), written to
``bench/results/soak.json``. Extra arguments are passed on (``--workers 2``)::

    python bench/bench_soak.py [--clients 100] [--duration 300]
"""

from __future__ import annotations

import sys
from pathlib import Path

import bench_load

OUT = Path(__file__).resolve().parent / "results" / "soak.json"

if __name__ == "__main__":
    sys.exit(bench_load.main(["--clients", "100", "--duration", "300", "--out", str(OUT), *sys.argv[1:]]))
