"""The pipeline benchmark's child processes: starting and stopping them, and what /proc says of them."""

from __future__ import annotations

import contextlib
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
console = Console(stderr=True)


def say(text: str) -> None:
    console.print(f"[bold cyan][pipeline-bench][/] {text}", highlight=False)


@dataclass
class ProcFigures:
    """One process as /proc shows it: CPU time so far, resident set now and at its peak (VmHWM)."""

    cpu_seconds: float
    rss_mib: float
    peak_rss_mib: float


def read_proc(pid: int) -> ProcFigures | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": fields 3… of proc(5)
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
    memory = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("Vm")}
    return ProcFigures(cpu, memory.get("VmRSS", math.nan), memory.get("VmHWM", math.nan))


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a service with WORKERS above 1 is a supervisor and its worker processes)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for child in (task / "children").read_text().split():
                found.extend(process_tree(int(child)))
    return found


def read_tree(pid: int) -> tuple[ProcFigures | None, list[ProcFigures]]:
    """The sum over `pid` and its descendants (peak RSS: the sum of each one's peak, an upper bound), and each."""
    each = [figures for member in process_tree(pid) if (figures := read_proc(member)) is not None]
    if not each:
        return None, []
    total = ProcFigures(
        sum(figures.cpu_seconds for figures in each),
        sum(figures.rss_mib for figures in each),
        sum(figures.peak_rss_mib for figures in each),
    )
    return total, each


def calibration_ms() -> float:
    """CPU milliseconds a fixed pure-Python loop takes here and now, best of three. The VM's CPUs are shared with
    other machines: when this figure is higher, every process's CPU per notification is higher too."""
    best = math.inf
    for _ in range(3):
        started = time.process_time()
        sum(number * number for number in range(1_000_000))
        best = min(best, time.process_time() - started)
    return best * 1000


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of a process's main thread (the event loop) and of all its other threads together (for the
    service on SQLite: mostly aiosqlite's worker threads, which run every SQL statement and commit)."""
    main = others = 0.0
    threads = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            stat = (task / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            threads += 1
            if task.name == str(pid):
                main = cpu
            else:
                others += cpu
    return {"main_thread_cpu_seconds": main, "other_threads_cpu_seconds": others, "threads": threads}


def own_figures() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}


class Children:
    """Every process this script starts, so that all of them are stopped whatever happens."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen[bytes]] = []

    def spawn(self, command: Sequence[str], *, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            # A session of its own: Ctrl-C reaches this script only, which then stops each child in order.
            process = subprocess.Popen(  # noqa: S603 - the project's own programs, fixed arguments
                list(command), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=REPO
            )
        self._processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], *, timeout: float = 60.0) -> int:
        """SIGTERM, then SIGKILL after `timeout` seconds; returns the exit code."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        with contextlib.suppress(ValueError):
            self._processes.remove(process)
        return process.returncode

    def stop_all(self) -> None:
        for process in reversed(list(self._processes)):
            with contextlib.suppress(Exception):
                self.stop(process, timeout=20)


def python_tool(name: str) -> str:
    """A console script of this environment (faststream, py-spy), else from PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found; for py-spy run the script with `uv run --with py-spy python …`")
    return found


def log_summary(text: str) -> dict[str, Any]:
    """How much a process logged, and its warnings and errors grouped by message up to the first digit."""
    levels: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    for line in text.splitlines():
        parts = line.split(" ", 4)
        if len(parts) < 5 or parts[2] not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            continue
        levels[parts[2]] += 1
        if parts[2] in ("WARNING", "ERROR", "CRITICAL"):
            message = f"{parts[2]} {parts[3]} {parts[4]}"
            head = next((message[:index] for index, char in enumerate(message) if char.isdigit()), message)[:160]
            problems[head] += 1
    return {
        "lines": len(text.splitlines()),
        "by_level": dict(levels),
        "warnings_and_errors": dict(problems.most_common(10)),
        "tracebacks": text.count("Traceback"),
    }
