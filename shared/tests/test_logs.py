"""The services' logging set-up: libraries that would log personal data or one line per message are quietened."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from notify_shared.logs import configure_logging

QUIETENED = ("aiokafka", "aiosqlite", "httpx")


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *QUIETENED)}
    handlers = list(root.handlers)
    yield
    root.handlers[:] = handlers
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize("level", ["INFO", "WARNING"])
def test_one_line_per_http_request_is_not_logged_at_info(level: str) -> None:
    logging.getLogger().setLevel(level)  # basicConfig leaves a root that pytest already configured alone

    configure_logging(level)

    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    assert logging.getLogger("httpx").isEnabledFor(logging.WARNING)
    assert not logging.getLogger("aiokafka").isEnabledFor(logging.INFO)
    assert not logging.getLogger("aiosqlite").isEnabledFor(logging.DEBUG)


def test_debug_keeps_the_http_requests_but_never_aiosqlite_statements() -> None:
    logging.getLogger().setLevel(logging.DEBUG)

    configure_logging("DEBUG")

    assert logging.getLogger("httpx").isEnabledFor(logging.INFO)
    assert not logging.getLogger("aiosqlite").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("aiokafka").isEnabledFor(logging.INFO)
