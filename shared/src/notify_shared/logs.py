"""Logging set-up for the services: one line per record, ids only.

Personal data (names, addresses, numbers, message bodies) never goes into a log call in this code base; see
docs/operations.md. Log lines carry ids, statuses and timings.
"""

from __future__ import annotations

import logging
import os

from notify_shared.workers import current_worker


def configure_logging(level: str | None = None) -> None:
    """Configure the root logger once, at service start; `LOG_LEVEL` picks the level (default INFO)."""
    worker = current_worker()
    # A worker of several (WORKERS) says which one it is, in the message so that the line's layout stays the same.
    tag = f"[worker {worker.index}] " if worker else ""
    logging.basicConfig(
        level=(level or os.environ.get("LOG_LEVEL", "INFO")).upper(),
        format=f"%(asctime)s %(levelname)s %(name)s {tag}%(message)s",
    )
    # aiokafka logs whole record values (personal data) at DEBUG and connection chatter at INFO: whatever
    # LOG_LEVEL says, only its warnings are wanted.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # aiosqlite logs every statement with its parameters (addresses, names, message text) at DEBUG.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    # httpx logs one INFO line per request: one per SMS (or email through an API) says nothing the status
    # events do not, and at thousands a minute it buries what matters and costs CPU. LOG_LEVEL=DEBUG keeps them.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)
