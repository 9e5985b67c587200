"""The Python examples of the README and docs/ run as they are written and print what they show
(pytest-examples: each ``#>`` line is the output of the ``print`` above it), in a folder holding
a copy of the demo database as ``geo-cs.duckdb`` (what ``geo-cs demo`` leaves) (issue 33, point 3)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pytest_examples import CodeExample, EvalExample, find_examples

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = list(find_examples(str(REPO / "README.md"), str(REPO / "docs")))


def test_the_documents_have_python_examples():
    assert any(e.path.name == "analysts.md" for e in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_a_python_example_runs_and_prints_what_it_shows(example: CodeExample, eval_example: EvalExample,
                                                          demo_db: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    shutil.copyfile(demo_db, tmp_path / "geo-cs.duckdb")
    monkeypatch.chdir(tmp_path)
    eval_example.set_config(line_length=110)
    eval_example.run_print_check(example)
