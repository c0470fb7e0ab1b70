"""The responses service in-process for tests: isolated topics, consumer group and database, an HTTP client,
answer links for the sample guardians, and the form a parent would send."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from notify_responses.app import create_app
from notify_responses.runtime import Runtime
from notify_responses.service import Clock
from notify_responses.settings import ResponsesSettings
from notify_shared.answer_links import AnswerLinkKeys
from notify_shared.contract import MeetingCreated
from notify_shared.testing.kafka import create_all_topics

PUBLIC_BASE_URL = "https://svar.bjolsen.example"
KEY_ID = "a"
KEY = "test-answer-link-key-0123456789abcdef"


def isolated_settings(*, kafka_bootstrap: str, work_dir: Path, **overrides: Any) -> ResponsesSettings:
    """Settings for one test: a fresh topic prefix, consumer group and database; one answer-link key."""
    run = uuid.uuid4().hex[:8]
    fields: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka_bootstrap,
        "topic_prefix": f"t{run}.",
        "consumer_group": f"responses-{run}",
        "database_url": f"sqlite+aiosqlite:///{work_dir / 'responses.db'}",
        "answer_link_keys": {KEY_ID: SecretStr(KEY)},
        "answer_link_signing_key_id": KEY_ID,
        "public_base_url": PUBLIC_BASE_URL,
        "relay_poll_interval": 0.05,
        "relay_retry_max": 0.5,
        # The automatic SMS answers land in the test's own file outbox, not the working directory's.
        "outbox_dir": work_dir / "outbox",
    }
    return ResponsesSettings(**(fields | overrides))


def link_for(settings: ResponsesSettings, event: MeetingCreated, guardian_number: int = 0) -> str:
    """The token the invitation of the event's `guardian_number`th recipient carries."""
    data = event.data
    return AnswerLinkKeys.from_settings(settings).sign(
        school_id=data.school.id,
        meeting_id=data.meeting.meeting_id,
        guardian_id=data.recipients[guardian_number].guardian_id,
        expires_at=data.meeting.starts_at,
    )


_PROOF = re.compile(r'name="proof" value="([^"]*)"')


def proof_in(page: str) -> str:
    """The anti-forgery value of a rendered form."""
    match = _PROOF.search(page)
    assert match is not None, "the page has no answer form"
    return unescape(match.group(1))


@dataclass
class RunningResponses:
    """A started app and a client that talks to it in-process (no socket)."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    async def open(self, token: str) -> httpx.Response:
        return await self.client.get(f"/r/{token}")

    async def answer(self, token: str, *, headers: dict[str, str] | None = None, **fields: str) -> httpx.Response:
        """Open the page and send the form with `fields`, as a parent's browser would."""
        page = await self.open(token)
        form = {"proof": proof_in(page.text)} | fields
        return await self.client.post(f"/r/{token}", data=form, headers=headers)


@asynccontextmanager
async def running_responses(
    settings: ResponsesSettings, *, clock: Clock | None = None
) -> AsyncIterator[RunningResponses]:
    """The app with its lifespan run (database, Kafka and relay) until the block ends."""
    await create_all_topics(settings.kafka_bootstrap_servers, settings.topics)
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_BASE_URL) as client:
            yield RunningResponses(app, client)
