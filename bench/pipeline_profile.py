"""py-spy attached to a service instance, and where its event loop spent its busy samples."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline_processes import Children, python_tool


class Profiler:
    """py-spy attached to a running service: samples until the service exits, then writes collapsed stacks."""

    def __init__(self, children: Children, work_dir: Path, rate: int) -> None:
        self._children = children
        self.output = work_dir / "service.pyspy.txt"
        self._log = work_dir / "py-spy.log"
        self._rate = rate
        self._process: subprocess.Popen[bytes] | None = None

    def attach(self, pid: int, *, subprocesses: bool = False) -> None:
        command = [
            python_tool("py-spy"),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(self._rate),
            "--format",
            "raw",
            "--nolineno",
            "--nonblocking",  # sample without pausing the service, so it runs at (almost) full speed
            "--output",
            str(self.output),
            # A supervisor of worker processes (WORKERS) does no work itself: sample its workers too.
            *(["--subprocesses"] if subprocesses else []),
        ]
        self._process = self._children.spawn(command, log=self._log)

    async def finish(self, within: float = 120.0) -> dict[str, Any]:
        """After the service stopped: wait for py-spy to write its file and summarise it."""
        if self._process is None:
            return {}
        try:
            await asyncio.to_thread(self._process.wait, within)
        except subprocess.TimeoutExpired:
            self._process.send_signal(signal.SIGINT)  # py-spy writes what it has on Ctrl-C
            await asyncio.sleep(5)
        self._children.stop(self._process, timeout=10)
        if not self.output.exists():
            log = self._log.read_text(errors="replace") if self._log.exists() else ""
            return {"error": f"py-spy wrote nothing: {log[-1000:]}"}
        return summarise_profile(self.output.read_text(encoding="utf-8", errors="replace")) | {
            "file": str(self.output),
            "rate_hz": self._rate,
        }


# ------------------------------------------------------------------------------------------------- profile

_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*)\)$")


def component_of(path: str) -> str:
    """The package a frame's file belongs to (py-spy names files relative to sys.path: `httpx/_client.py`)."""
    parts = path.split("/")
    top = parts[0].removesuffix(".py")
    if top in ("notify_shared", "notify_invitations") and len(parts) > 1:
        return f"{top}.{parts[1].removesuffix('.py')}"
    if top in sys.stdlib_module_names:
        return f"stdlib:{top}"
    return top or "?"


def short_frame(function: str, path: str) -> str:
    return f"{path}:{function}"


IDLE_FRAMES = ("selectors.py:EpollSelector.select",)
"""Leaf frames where the event loop waits for I/O: py-spy's `--nonblocking` sampling counts some of it as active."""


def summarise_profile(raw: str, top: int = 20) -> dict[str, Any]:
    """Where the service's main thread (the event loop, where all Python code but SQLite's runs) spent its busy
    samples — own time by component and by frame, inclusive time by function — from py-spy's collapsed stacks
    (`frame;frame;… count` per line), and how the samples split between threads.

    Other threads' samples (aiosqlite's workers) are counted but not broken down: they sit in SQLite's C code,
    which py-spy shows as one frame, and include time waiting for the disk; /proc gives their CPU time.
    """
    own: Counter[str] = Counter()
    own_by_component: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [(match["function"], match["path"]) for frame in stack.split(";") if (match := _FRAME.match(frame))]
        if not frames:
            continue
        leaf = short_frame(*frames[-1])
        if frames[0][0] != "<module>":
            threads["other threads"] += count
            continue
        if leaf in IDLE_FRAMES:
            threads["main thread, waiting in epoll"] += count
            continue
        threads["main thread, busy"] += count
        own[leaf] += count
        own_by_component[component_of(frames[-1][1])] += count
        for name in {short_frame(function, path) for function, path in frames}:
            inclusive[name] += count
    busy = threads["main thread, busy"]

    def shares(counter: Counter[str], limit: int) -> list[dict[str, Any]]:
        return [{"name": name, "samples": n, "share": n / max(busy, 1)} for name, n in counter.most_common(limit)]

    # Inclusive figures are most telling for our code and the libraries it calls, not for the frames that only
    # start the process, run the event loop or wrap the handler (every busy sample passes through those).
    plumbing = ("typer/", "click/", "faststream/", "fast_depends/", "anyio/_core/_eventloop", "anyio/_backends/")
    interesting = Counter(
        {
            name: count
            for name, count in inclusive.items()
            if not name.startswith(("asyncio/", "threading.py", "runpy.py", *plumbing)) and ":<module>" not in name
        }
    )
    return {
        "samples": sum(threads.values()),
        "samples_by_thread": dict(threads),
        "shares_are_of": "the main thread's busy samples",
        "own_by_component": shares(own_by_component, top),
        "own_by_frame": shares(own, top),
        "inclusive_by_frame": shares(interesting, 40),
    }
