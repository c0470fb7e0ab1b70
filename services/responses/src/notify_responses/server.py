"""`notify-responses`: serve the answer page with uvicorn on HTTP_HOST:HTTP_PORT (default 0.0.0.0:8000), and
`/metrics`, `/readyz` and `/healthz` on HTTP_HOST:ADMIN_PORT (default 9000; see notify_shared.observability.ports)."""

from __future__ import annotations

from notify_responses.app import create_app
from notify_responses.settings import ResponsesSettings
from notify_shared.logs import configure_logging
from notify_shared.settings import load_settings
from notify_shared.workers.serving import run_server

GRACEFUL_SHUTDOWN_SECONDS = 30


def main() -> None:
    configure_logging()
    settings = load_settings(ResponsesSettings)
    # WORKERS > 1: a supervisor of that many processes, each serving both ports (notify_shared.workers).
    run_server(
        lambda: create_app(settings),
        settings,
        service="responses",
        log_config=None,
        # No access log: its lines carry the path, and the path of the answer page is the parent's credential.
        # The notify_responses_page_seconds histogram counts requests by method and status instead.
        access_log=False,
        server_header=False,
        # Behind the ingress: the client address (for the rate limits) from X-Forwarded-For, trusting the
        # addresses in FORWARDED_ALLOW_IPS (uvicorn's own setting; 127.0.0.1 by default).
        proxy_headers=True,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


if __name__ == "__main__":
    main()
