"""`notify-ingest`: serve the ingest API with uvicorn on HTTP_HOST:HTTP_PORT (default 0.0.0.0:8000), and
`/metrics`, `/readyz` and `/healthz` on HTTP_HOST:ADMIN_PORT (default 9000; see notify_shared.observability.ports)."""

from __future__ import annotations

from notify_ingest.app import create_app
from notify_ingest.settings import IngestSettings
from notify_shared.logs import configure_logging
from notify_shared.settings import load_settings
from notify_shared.workers.serving import run_server

GRACEFUL_SHUTDOWN_SECONDS = 30
"""On SIGTERM, requests in flight get this long to finish (a publish takes at most INGEST_PUBLISH_TIMEOUT_SECONDS)."""


def main() -> None:
    configure_logging()
    settings = load_settings(IngestSettings)
    # WORKERS > 1: a supervisor of that many processes, each serving both ports (notify_shared.workers).
    run_server(
        lambda: create_app(settings),
        settings,
        service="ingest",
        # None: keep the root logging set up by configure_logging (one line per record, aiokafka pinned).
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


if __name__ == "__main__":
    main()
