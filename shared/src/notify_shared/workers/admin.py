"""`ADMIN_PORT` of a service run as several workers: `/healthz`, `/readyz` and `/metrics` for all of them.

The supervisor asks each worker on its private admin port and answers for the whole service instance:

- `/healthz` is 200 while every worker that is running answers its own `/healthz` (a worker being restarted
  does not count against it, so a liveness probe restarts the pod only for a worker that hangs);
- `/readyz` is 200 when every worker is ready, else 503 with each unready worker's reasons;
- `/metrics` is every worker's exposition in one, each series labelled `worker="0"`, `"1"`, …: Prometheus
  scrapes one target per instance and sums with `sum without (worker)` where a total is wanted. Series are not
  summed here: a counter of a restarted worker starts again from zero, which `rate()` understands per series
  but not in a sum, and a gauge such as the consumer lag of a partition belongs to the worker holding it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import httpx
from faststream.asgi import AsgiResponse
from faststream.asgi.types import Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from notify_shared.observability.ports import not_found

ASK_TIMEOUT_SECONDS = 5.0
"""Longest the supervisor waits for one worker's answer; a worker's own readiness checks time out after 3 s."""


@dataclass(frozen=True)
class WorkerView:
    """What the admin routes need of one worker: its index, its private admin port, whether it runs now."""

    index: int
    admin_port: int
    running: bool


class SupervisorMetrics:
    """The supervisor's own series, next to the workers' ones on `/metrics`."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self.restarts = Counter(
            "notify_worker_restarts",
            "Worker processes started again after one exited on its own.",
            ["service"],
            registry=self.registry,
        )
        self.running = Gauge(
            "notify_workers_running",
            "Worker processes of this instance now running.",
            ["service"],
            registry=self.registry,
        )
        self.configured = Gauge(
            "notify_workers_configured",
            "Worker processes this instance runs (WORKERS).",
            ["service"],
            registry=self.registry,
        )


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def merge_expositions(expositions: Mapping[int, str]) -> bytes:
    """The workers' Prometheus text expositions as one, every sample labelled with its worker's index."""
    families: dict[str, Metric] = {}
    for worker, text in sorted(expositions.items()):
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            merged.samples.extend(
                sample._replace(labels={**sample.labels, "worker": str(worker)}) for sample in family.samples
            )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families.values()))
    return generate_latest(registry)


class WorkersAdmin:
    """The ASGI app the supervisor serves on `ADMIN_PORT`."""

    def __init__(self, workers: Callable[[], Sequence[WorkerView]], metrics: SupervisorMetrics) -> None:
        self._workers = workers
        self._metrics = metrics
        self._client = httpx.AsyncClient(timeout=ASK_TIMEOUT_SECONDS)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        routes = {"/healthz": self._healthz, "/readyz": self._readyz, "/metrics": self._metrics_route}
        route = routes.get(scope["path"])
        if route is None or scope["method"] not in ("GET", "HEAD"):
            await not_found(scope, receive, send)
            return
        response = await route()
        await response(scope, receive, send)

    async def _ask(self, worker: WorkerView, path: str) -> httpx.Response | str:
        """The worker's answer on its private port, or why there is none."""
        try:
            return await self._client.get(f"http://127.0.0.1:{worker.admin_port}{path}")
        except httpx.TimeoutException:
            return "timeout"
        except httpx.HTTPError as error:
            return f"unreachable ({type(error).__name__})"

    async def _ask_all(self, path: str, workers: Sequence[WorkerView]) -> list[httpx.Response | str]:
        return list(await asyncio.gather(*(self._ask(worker, path) for worker in workers)))

    async def _healthz(self) -> AsgiResponse:
        running = [worker for worker in self._workers() if worker.running]
        answers = await self._ask_all("/healthz", running)
        failed = {
            f"worker {worker.index}": answer if isinstance(answer, str) else f"HTTP {answer.status_code}"
            for worker, answer in zip(running, answers, strict=True)
            if isinstance(answer, str) or answer.status_code != 200
        }
        if failed:
            return _json({"status": "unhealthy", "failed": failed}, 503)
        return AsgiResponse(b"ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"})

    async def _readyz(self) -> AsgiResponse:
        workers = list(self._workers())
        answers = await self._ask_all("/readyz", [worker for worker in workers if worker.running])
        by_index = dict(zip((worker.index for worker in workers if worker.running), answers, strict=True))
        failed: dict[str, object] = {}
        for worker in workers:
            answer = by_index.get(worker.index, "starting or restarting")
            if isinstance(answer, str):
                failed[f"worker {worker.index}"] = answer
            elif answer.status_code != 200:
                failed[f"worker {worker.index}"] = _body(answer).get("failed", f"HTTP {answer.status_code}")
        if failed:
            return _json({"status": "not ready", "failed": failed}, 503)
        return _json({"status": "ready", "workers": len(workers)}, 200)

    async def _metrics_route(self) -> AsgiResponse:
        workers = list(self._workers())
        self._metrics.running.labels(self._metrics.service).set(sum(worker.running for worker in workers))
        running = [worker for worker in workers if worker.running]
        answers = await self._ask_all("/metrics", running)
        expositions = {
            worker.index: answer.text
            for worker, answer in zip(running, answers, strict=True)
            if not isinstance(answer, str) and answer.status_code == 200
        }
        body = merge_expositions(expositions) + generate_latest(self._metrics.registry)
        return AsgiResponse(body, 200, {"Content-Type": CONTENT_TYPE_LATEST})


def _body(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _json(body: object, status: int) -> AsgiResponse:
    return AsgiResponse(json.dumps(body).encode(), status, {"Content-Type": "application/json"})


async def _lifespan(receive: Receive, send: Send) -> None:
    # Nothing to open or close: the supervisor owns the workers, not this app.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
