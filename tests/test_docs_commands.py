"""Every shell command in the README and in docs/ runs here, on the demo, as a reader types it —
or says, beside it, what it needs that the demo does not have (issue 33, point 3).

The blocks are read with markdown-it-py (the CommonMark parser rich already brings): ```bash,
```sh and ```console fences. In a console block a command is a line starting ``$ ``, and the
lines under it are what it prints: each shown line must be in what the command prints (spaces
aside; ``…`` stands for lines left out). In a bash block every line that is not a comment is a
command; a ``\\`` continues it, a heredoc (``<<'CSV'``) is part of it.

A command the demo cannot run carries ``# needs: <what, and where to get it>`` at its end, or a
comment line ``# needs: …`` above it applies to the commands under it up to a blank line. Those
are not run: :func:`test_a_marked_command_says_what_it_needs` checks that the mark says something.

Each block runs top to bottom in a folder of its own, on a copy of the demo database
(``GEO_CS_DB``): its commands build on each other as the page says (a crosswalk, then the
harmonised series, then the analysis). ``http://127.0.0.1:8000`` and ``HOST`` become a server of
the block's own: the block's ``geo-cs … serve &`` when it has one, or one started for it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from tests.servers import free_port, wait_until

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "console"}
NEEDS = re.compile(r"#\s*needs:\s*(?P<what>.*)$")
#: the address the documents use for a server on the reader's machine
DOCUMENTED_SERVER = re.compile(r"https?://127\.0\.0\.1:8000|\bHOST\b")

#: commands of the set-up that another check runs as written, and which one
RUN_ELSEWHERE = {
    "pip install -e '.[test]' && geo-cs demo": ".ci/run (the install) and scripts/check_wheel.py "
                                               "(geo-cs demo serving from an installed package)",
    "pytest": ".ci/run",
}
#: a command that keeps running, as a server does: started, waited for, stopped after the block
SERVES = re.compile(r"\bgeo-cs\b(?!.*--no-serve).*\b(serve|demo)\b")

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Command:
    """One command of a document: where it is, what it is, what it needs, what it prints."""

    doc: str
    line: int
    text: str
    needs: str | None = None
    shown: tuple[str, ...] = ()


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    commands: tuple[Command, ...]

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def _commands(doc: str, first_line: int, content: str, console: bool) -> Iterator[Command]:
    lines = content.splitlines()
    needs_above: str | None = None
    # a mark above the block's first command is the whole block's
    needs_block: str | None = None
    started = False
    i = 0
    while i < len(lines):
        raw, number = lines[i], first_line + i
        i += 1
        stripped = raw.strip()
        if not stripped:
            needs_above = needs_block
            continue
        if console and not stripped.startswith("$ "):
            continue    # output of the command before (taken with it below)
        text = stripped[2:] if console else stripped
        if text.startswith("#"):
            found = NEEDS.search(text)
            if found:
                needs_above = found["what"].strip()
                if not started:
                    needs_block = needs_above
            continue
        started = True
        # continuation lines and a heredoc's body belong to the command
        while text.endswith("\\") and i < len(lines):
            text = text[:-1].rstrip() + " " + lines[i].strip()
            i += 1
        heredoc = re.search(r"<<-?\s*'?(\w+)'?", text)
        if heredoc:
            body = []
            while i < len(lines) and lines[i].strip() != heredoc.group(1):
                body.append(lines[i])
                i += 1
            i += 1
            text = "\n".join([text, *body, heredoc.group(1)])
        shown: list[str] = []
        if console:
            while i < len(lines) and not lines[i].strip().startswith("$ "):
                shown.append(lines[i])
                i += 1
        own = NEEDS.search(text.splitlines()[0])
        needs = own["what"].strip() if own else needs_above
        yield Command(doc, number, text, needs, tuple(shown))


def documented_blocks() -> list[Block]:
    """Every shell block of the README and docs/, with its commands."""
    parser = MarkdownIt("commonmark")
    blocks = []
    for path in DOCS:
        doc = str(path.relative_to(REPO))
        for token in parser.parse(path.read_text(encoding="utf-8")):
            language = token.info.split()[0] if token.info else ""
            if token.type != "fence" or language not in SHELL:
                continue
            first = token.map[0] + 2   # the fence's own line is map[0] (0-based)
            commands = tuple(_commands(doc, first, token.content, language == "console"))
            blocks.append(Block(doc, first - 1, commands))
    return blocks


BLOCKS = documented_blocks()
TO_RUN = [b for b in BLOCKS if any(c.needs is None for c in b.commands)]


def _words(line: str) -> str:
    """The text without its spacing: a shown line matches however the command spaces or wraps
    it (JSON pretty-printed, a table's padding)."""
    return "".join(line.split())


def _shown_lines(command: Command) -> list[str]:
    """What the document shows the command printing, less the ``…`` of lines left out and
    the comments added to the page (``   # 77 rolling years``)."""
    out = []
    for line in command.shown:
        line = re.sub(r"\s{2,}#\s.*$", "", line).rstrip()
        if line.strip() in ("", "…", "...") or line.strip().startswith("…"):
            continue
        out.append(_words(line))
    return out


class BlockRun:
    """A block's folder, database copy, server and environment."""

    def __init__(self, folder: Path, db: Path):
        self.folder, self.db = folder, db
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.background: list[subprocess.Popen] = []
        bin_dir = str(Path(sys.executable).parent)
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("GEO_CS_")},
                    "GEO_CS_DB": str(db), "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
                    "GEO_CS_WARM_MAPS": "0", "COLUMNS": "200"}

    def localise(self, text: str) -> str:
        text = DOCUMENTED_SERVER.sub(self.base, text)
        # a server the block starts listens where the block's requests go
        first, _, rest = text.partition("\n")
        if SERVES.search(first) and "--port" not in first:
            background = first.rstrip().endswith("&")
            first = f"{first.rstrip().removesuffix('&').rstrip()} --port {self.port}" + (" &" if background else "")
        return first + (f"\n{rest}" if rest else "")

    def serving(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.base}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def start_server(self, command: str) -> None:
        log = (self.folder / f"server-{len(self.background)}.log").open("wb")
        self.background.append(subprocess.Popen(["bash", "-c", command], cwd=self.folder, env=self.env,
                                                stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True))
        wait_until(self.serving, 120, lambda: f"`{command}` serving on {self.base}: "
                   + (self.folder / f"server-{len(self.background) - 1}.log").read_text(errors="replace"))

    def run(self, command: Command) -> subprocess.CompletedProcess:
        text = self.localise(re.sub(r"\s+#\s.*$", "", command.text.split("\n")[0])
                             + "".join("\n" + line for line in command.text.split("\n")[1:]))
        if text.rstrip().endswith("&") or SERVES.search(text.splitlines()[0]):
            self.start_server(text.rstrip().removesuffix("&"))
            return subprocess.CompletedProcess(text, 0, "", "")
        if DOCUMENTED_SERVER.search(command.text) and not self.background and not self.serving():
            self.start_server(f"geo-cs serve --port {self.port} --workers 1")
        return subprocess.run(["bash", "-o", "pipefail", "-c", text], cwd=self.folder, env=self.env,
                              capture_output=True, text=True, timeout=600)

    def stop(self) -> None:
        for process in self.background:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGKILL)


def test_the_documents_have_commands_and_the_reader_reads_them():
    """The reader of this test finds what it runs: blocks in the README and in most guides."""
    docs = {b.doc for b in BLOCKS}
    assert "README.md" in docs and len(docs) >= 10
    assert sum(len(b.commands) for b in BLOCKS) >= 80
    ni153 = [c for b in BLOCKS for c in b.commands if c.doc == "README.md" and "analyse ni153" in c.text]
    assert ni153 and ni153[0].needs is None


def _elsewhere(command: Command) -> str | None:
    return RUN_ELSEWHERE.get(re.sub(r"\s+#\s.*$", "", command.text).strip())


def test_the_set_up_commands_are_run_where_this_says():
    elsewhere = [c for b in BLOCKS for c in b.commands if _elsewhere(c)]
    assert len(elsewhere) == len(RUN_ELSEWHERE)
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "pytest -m" in ci and "pip install" in ci and "scripts/check_wheel.py" in ci


def test_a_marked_command_says_what_it_needs():
    for block in BLOCKS:
        for command in block.commands:
            if command.needs is not None:
                assert len(command.needs) >= 12, f"{command.doc}:{command.line}: say what it needs " \
                                                 f"and where to get it: {command.needs!r}"


@pytest.mark.parametrize("block", TO_RUN, ids=[b.id for b in TO_RUN])
def test_a_documented_command_runs_on_the_demo_as_shown(block: Block, demo_db: Path, tmp_path: Path):
    db = tmp_path / "geo-cs.duckdb"
    shutil.copyfile(demo_db, db)
    folder = tmp_path / "work"
    folder.mkdir()
    run = BlockRun(folder, db)
    try:
        for command in block.commands:
            if command.needs is not None or _elsewhere(command):
                continue
            started = time.monotonic()
            done = run.run(command)
            where = f"{command.doc}:{command.line}: `{command.text}`"
            # a command the page shows failing ("error: …") must fail, with exit 3 (bad input)
            expected = 3 if _shown_lines(command)[:1] and _shown_lines(command)[0].startswith("error:") else 0
            assert done.returncode == expected, (f"{where} exited {done.returncode} after "
                                          f"{time.monotonic() - started:.0f} s:\n{done.stdout[-2000:]}\n"
                                          f"{done.stderr[-2000:]}")
            printed = _words(done.stdout + "\n" + done.stderr)
            for line in _shown_lines(command):
                assert line in printed, f"{where} does not print what the page shows:\n  {line}\n" \
                                        f"printed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    finally:
        run.stop()
