"""Benchmark: geo-cs soaked by 100 people using it at once for 5 minutes — staff opening and
moving their partnership's map (pages and tiles), GIS officers paging items, analysts
downloading CSV — with 1-5 s think times (``bench_load.py --model users``).

The people arrive over a minute (reported apart, as locust's ``--reset-stats`` does), then 5
minutes are measured. The method, the actions, their weights and the targets are
``bench_load.py``'s (users model): zero errors, every text response and tile gzipped, p99 of
every tile request <= 100 ms and of every limit-100 items page (GeoJSON by offset or bbox, CSV)
<= 300 ms, memory stable (server RSS growth over the second half <= 50 MB); the server runs as
many workers as ``geo-cs serve`` starts by default. Written to ``bench/results/soak.json``.
Extra arguments are passed on and win (``--model closed`` for the back-to-back loop,
``--workers 1``)::

    python bench/bench_soak.py [--clients 100] [--duration 300] [--ramp 60] [--workers N]
"""

from __future__ import annotations

import sys
from pathlib import Path

import bench_load

OUT = Path(__file__).resolve().parent / "results" / "soak.json"

if __name__ == "__main__":
    sys.exit(bench_load.main(["--model", "users", "--clients", "100", "--duration", "300",
                              "--out", str(OUT), *sys.argv[1:]]))
