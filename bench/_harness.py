"""What the benchmarks share: one process per side driven over pipes, memory readings, and
the commit being measured. Scripts in bench/ import it as a sibling module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def proc_status_mb(field: str, pid: int | str = "self") -> float:
    """A memory field of /proc/<pid>/status (VmRSS: now, VmHWM: peak since exec), in MB.

    Not ru_maxrss: Linux carries a parent's peak into a child across fork and exec.
    """
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def git_commit() -> str:
    """The commit under measurement (``-dirty`` when the tree has changes)."""
    try:
        return subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class ChildFailed(RuntimeError):
    pass


class Child:
    """One side of a benchmark in its own process (``script --child SIDE …``), driven over
    pipes: each request is a line, each answer a JSON line; a JSON ``error`` or a closed pipe
    raises :class:`ChildFailed` with the end of the child's stderr."""

    def __init__(self, script: str, side: str, workdir: Path, extra: list[str] | None = None) -> None:
        self.side = side
        cmd = [sys.executable, str(Path(script).resolve()), "--child", side, "--workdir", str(workdir),
               *(extra or [])]
        self.err_path = workdir / f"child_{side}.err"
        self._err = self.err_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, text=True)
        self.ready = self.receive()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        message = json.loads(line) if line else None
        if message is None or "error" in message:
            self.proc.wait()
            self._err.close()
            raise ChildFailed(f"{self.side} failed (exit {self.proc.returncode}):\n"
                              f"{self.err_path.read_text(errors='replace')[-4000:]}")
        return message

    def request(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.receive()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # only reached on failure; this process was started here
        self.proc.wait()
        if not self._err.closed:
            self._err.close()
