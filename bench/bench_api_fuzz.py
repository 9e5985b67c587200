"""Benchmark: schemathesis against the running service, many examples per operation.

The test suite fuzzes every operation of ``/api`` with a few examples in-process
(``tests/test_api_fuzz.py``); this is the long run over HTTP: geo-cs served by uvicorn (one
worker) on the demo database (built into ``bench/.cache/demo.duckdb`` on first use, so it runs
without ``../shared``), the OpenAPI document read from the server, and for every operation
``--examples`` (default 1,000) generated requests checked for: no 5xx, and a response that matches
its documented status codes, content types and schema. Hypothesis' example database is off:
each run draws afresh (seeded by ``--seed``).

Peer: none — the target is absolute: zero failures. Results: ``bench/results/api_fuzz.json``
(operations, examples sent, failures with the request that caused each).

    python bench/bench_api_fuzz.py [--examples 1000] [--seed 7]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import schemathesis
from _harness import REPO, RESULTS, git_commit, start_geo_cs, timestamp, write_results
from hypothesis import HealthCheck, given, seed, settings
from rich.console import Console
from rich.progress import Progress

CACHE = REPO / "bench" / ".cache"
OUT = RESULTS / "api_fuzz.json"


def demo_db() -> Path:
    """The demo database, built once from the embedded bundle."""
    from geo_cs.demo import build_demo
    from geo_cs.store import Store

    path = CACHE / "demo.duckdb"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".building")
        partial.unlink(missing_ok=True)
        with Store.open(partial) as store:
            build_demo(store)
        partial.rename(path)
    return path


def fuzz_operation(operation, name: str, args: argparse.Namespace, checks: list,
                   failures: list[dict]) -> int:
    """Send up to ``args.examples`` generated requests to one operation; return how many were
    sent. A failing check is recorded with its request (hypothesis stops the operation at its
    first failure, shrunk to the simplest request that shows it)."""
    sent = 0

    @seed(args.seed)
    @given(case=operation.as_strategy())
    @settings(max_examples=args.examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):
        nonlocal sent
        sent += 1
        try:
            case.call_and_validate(checks=checks, timeout=60)
        except Exception as exc:
            failures.append({"operation": name, "request": case.as_curl_command(),
                             "failure": str(exc)[:1000]})
            raise

    with contextlib.suppress(Exception):
        fuzz()
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1000, help="examples per operation")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    console = Console()
    with console.status("building the demo database (once)"):
        db = demo_db()
    server = start_geo_cs(db, CACHE / "api_fuzz")
    checks = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
              schemathesis.checks.content_type_conformance,
              schemathesis.checks.response_schema_conformance]
    failures: list[dict] = []
    per_operation: dict[str, int] = {}
    started = time.monotonic()
    try:
        server.wait_ready("/health")
        schema = schemathesis.openapi.from_url(f"{server.base}/api")
        operations = [result.ok() for result in schema.get_all_operations()]
        with Progress(console=console) as progress:
            task = progress.add_task("operations", total=len(operations))
            for operation in operations:
                name = f"{operation.method.upper()} {operation.path}"
                per_operation[name] = fuzz_operation(operation, name, args, checks, failures)
                progress.advance(task)
    finally:
        server.stop()
    seconds = time.monotonic() - started
    total = sum(per_operation.values())
    ok = not failures
    console.print(f"{len(per_operation)} operations, {total:,} requests in {seconds:.0f} s: "
                  + ("[green]no failure[/]" if ok else f"[red]{len(failures)} failures[/]"))
    for failure in failures[:10]:
        console.print(f"  [red]{failure['operation']}[/]: {failure['failure'][:300]}")
    write_results(OUT, {
        "benchmark": "api_fuzz",
        "timestamp": timestamp(),
        "commit": git_commit(),
        "settings": {"examples_per_operation": args.examples, "seed": args.seed,
                     "checks": [c.__name__ for c in checks], "database": "demo"},
        "results": {"operations": per_operation, "requests": total, "seconds": round(seconds, 1),
                    "failures": failures},
        "targets": {"failures": 0},
        "pass": {"no_failures": ok},
    }, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
