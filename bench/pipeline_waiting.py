"""Bounded waits of a run: for the sinks to have every notification, for a consumer group to settle."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from pipeline_parts import ServiceInstance, Sinks
from pipeline_processes import console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


@contextmanager
def progress_bars() -> Iterator[Progress]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        yield progress


async def wait_for_deliveries(
    sinks: Sinks,
    services: Sequence[ServiceInstance],
    expected: int,
    progress: Progress,
    *,
    what: str,
    within: float,
    stall: float,
) -> dict[str, Any]:
    """Poll the sinks until `expected` notifications are in, nothing came for `stall` s, or `within` s passed."""
    task: TaskID = progress.add_task(what, total=expected, rate="")
    started = time.monotonic()
    last_change = started
    accepted = 0
    outcome = "complete"
    rate_window: list[tuple[float, int]] = []
    # Other work on the machine shows here: the 1-minute load average, sampled every few seconds.
    loads: list[float] = []
    try:
        while True:
            now = time.monotonic()
            if len(loads) <= (now - started) / 5:
                loads.append(os.getloadavg()[0])
            count = await sinks.accepted()
            if count != accepted:
                accepted, last_change = count, now
            rate_window = [*rate_window[-19:], (now, count)]
            rate = (rate_window[-1][1] - rate_window[0][1]) / max(rate_window[-1][0] - rate_window[0][0], 1e-9)
            progress.update(task, completed=min(accepted, expected), rate=f"{rate:,.0f}/s")
            if accepted >= expected:
                break
            if not all(service.alive for service in services):
                outcome = "a service exited"
                break
            if now - last_change > stall:
                outcome = f"stalled: nothing accepted for {stall:.0f} s"
                break
            if now - started > within:
                outcome = f"timed out after {within:.0f} s"
                break
            await asyncio.sleep(0.5)
    finally:
        progress.remove_task(task)
    return {
        "outcome": outcome,
        "accepted": accepted,
        "expected": expected,
        "waited_seconds": time.monotonic() - started,
        "load_average_during": {"mean": sum(loads) / len(loads), "max": max(loads)} if loads else {},
    }


async def group_assignment(bootstrap: str, group: str) -> dict[str, Any]:
    """The consumer group's state and each member's assigned partitions, from the broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    for response in responses:
        for described in response.groups:
            error_code, _group_id, state, _protocol_type, _protocol, members = described[:6]
            assignments: list[list[str]] = []
            for member in members:
                raw = member[-1]
                if not raw:
                    assignments.append([])
                    continue
                decoded = ConsumerProtocolMemberAssignment.decode(raw)
                assignments.append(sorted(f"{topic}[{partition}]" for topic, partition in _partitions(decoded)))
            return {"error_code": error_code, "state": state, "members": assignments}
    return {"state": "unknown", "members": []}


def _partitions(assignment: Any) -> list[tuple[str, int]]:
    return [(topic, partition) for topic, partitions in assignment.assignment for partition in partitions]


async def wait_for_group(bootstrap: str, group: str, members: int, topic: str, within: float = 90.0) -> dict[str, Any]:
    """Until the group is Stable with `members` members, each holding partitions of `topic`."""
    deadline = time.monotonic() + within
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            state = await group_assignment(bootstrap, group)
            holding = [
                [name for name in assigned if name.startswith(f"{topic}[")] for assigned in state.get("members", [])
            ]
            if state.get("state") == "Stable" and len(holding) == members and all(holding):
                # The partitions of `topic` each member holds, e.g. [[0, 2, 4], [1, 3, 5]].
                state["partitions_of_topic"] = [
                    sorted(int(name[len(topic) + 1 : -1]) for name in held) for held in holding
                ]
                return state
        await asyncio.sleep(0.5)
    raise RuntimeError(f"consumer group {group} did not settle with {members} members within {within:.0f} s: {state}")
