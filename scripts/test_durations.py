"""Write ``tests/durations.json``: each test file's seconds in a run, read from its JUnit XML.

The suite's conftest starts the costliest files first, so that under ``pytest -n auto --dist
loadfile`` no worker is left with a long file while the others have finished. Refresh the
table when files are added or grow a lot (an unknown file counts as the median)::

    pytest -m "slow or not slow" --junitxml=/tmp/junit.xml
    python scripts/test_durations.py /tmp/junit.xml
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "durations.json"


def file_seconds(junit_xml: Path) -> dict[str, float]:
    """Seconds per test file (``test_export.py``), summed over its tests' setup, call and teardown."""
    seconds: Counter[str] = Counter()
    for case in ET.parse(junit_xml).iter("testcase"):
        module = (case.get("classname") or "").split(".")[-1]
        if module:
            seconds[f"{module}.py"] += float(case.get("time") or 0)
    return {name: round(s, 1) for name, s in sorted(seconds.items(), key=lambda kv: -kv[1])}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_file():
        print(__doc__, file=sys.stderr)
        return 2
    OUT.write_text(json.dumps(file_seconds(Path(argv[0])), indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
