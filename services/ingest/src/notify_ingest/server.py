"""`notify-ingest`: serve the ingest API with uvicorn on HTTP_HOST:HTTP_PORT (default 0.0.0.0:8000), and
`/metrics`, `/readyz` and `/healthz` on HTTP_HOST:ADMIN_PORT (default 9000; see notify_shared.observability.ports)."""

from __future__ import annotations

import uvicorn

from notify_ingest.app import create_app
from notify_ingest.settings import IngestSettings
from notify_shared.logs import configure_logging
from notify_shared.observability.ports import SplitByPort, bind_public_and_admin
from notify_shared.settings import load_settings

GRACEFUL_SHUTDOWN_SECONDS = 30
"""On SIGTERM, requests in flight get this long to finish (a publish takes at most INGEST_PUBLISH_TIMEOUT_SECONDS)."""


def main() -> None:
    configure_logging()
    settings = load_settings(IngestSettings)
    config = uvicorn.Config(
        SplitByPort(create_app(settings), admin_port=settings.admin_port),
        host=settings.http_host,
        port=settings.http_port,
        # None: keep the root logging set up by configure_logging (one line per record, aiokafka pinned).
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    uvicorn.Server(config).run(sockets=bind_public_and_admin(config, settings.admin_port))


if __name__ == "__main__":
    main()
