"""A parent answers from the invitation email, in a real browser: the invitations service and the responses service
on the real broker, the page served over HTTP by uvicorn, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn
from playwright.async_api import async_playwright
from pydantic import SecretStr

from notify_invitations.testing import Deployment
from notify_invitations.testing import isolated_settings as invitations_settings
from notify_reminders.store import reminders as reminder_rows
from notify_reminders.testing import Deployment as RemindersDeployment
from notify_reminders.testing import TestClock
from notify_reminders.testing import isolated_settings as reminders_settings
from notify_responses.app import create_app
from notify_responses.settings import ResponsesSettings
from notify_responses.testing import KEY, KEY_ID
from notify_responses.testing import isolated_settings as responses_settings
from notify_shared import samples
from notify_shared.testing.clocks import RunningClock
from notify_shared.testing.kafka import EventPublisher, TopicReader, create_all_topics
from notify_shared.testing.sinks import SmsSink, SmtpSink, sms_sink, smtp_sink
from notify_shared.testing.waiting import wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_sink() as sink:
        yield sink


@pytest.fixture
def sms() -> Iterator[SmsSink]:
    with sms_sink() as sink:
        yield sink


@asynccontextmanager
async def _served(settings: ResponsesSettings) -> AsyncIterator[None]:
    """The responses service as deployed: uvicorn on a real port, without an access log."""
    app = create_app(settings, clock=RunningClock(samples.SAMPLE_NOW))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.http_port, log_config=None, access_log=False, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started, within=30, what="the answer page served")
        yield
    finally:
        server.should_exit = True
        await task


def _link_in(email: EmailMessage, base_url: str) -> str:
    text = email.get_body(preferencelist=("plain",))
    assert text is not None
    match = re.search(re.escape(base_url) + r"/r/[A-Za-z0-9_-]+", text.get_content())
    assert match is not None, "the invitation has no answer link"
    return match.group(0)


@pytest.mark.parametrize(
    ("language", "coming", "confirmed"),
    [
        ("nb", "Ja, jeg kommer", "Du har svart at du kommer."),
        ("ar", "نعم، سأحضر", "لقد أجبتم بأنكم ستحضرون."),
        ("pl", "Tak, przyjdę", "Zapisana odpowiedź: tak, przyjdę."),
    ],
)
async def test_a_parent_answers_from_the_invitation_email_in_a_real_browser(  # noqa: PLR0917 - pytest passes fixtures by name
    kafka_bootstrap: str, tmp_path: Path, smtp: SmtpSink, sms: SmsSink, language: str, coming: str, confirmed: str
) -> None:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    links = {
        "answer_link_keys": {KEY_ID: SecretStr(KEY)},
        "answer_link_signing_key_id": KEY_ID,
        "public_base_url": base_url,
    }
    invitations = invitations_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path, smtp=smtp, sms=sms)
    invitations = invitations.model_copy(update=links)
    responses = responses_settings(
        kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path, topic_prefix=invitations.topic_prefix, http_port=port
    )
    await create_all_topics(kafka_bootstrap, invitations.topics)
    guardian = samples.sample_guardian(1, language=language)
    event = samples.meeting_created(recipients=[guardian])

    async with Deployment(invitations, smtp, sms).running(), _served(responses):
        async with EventPublisher(kafka_bootstrap, invitations.topics) as publisher:
            await publisher.publish(event)
        await wait_until(lambda: len(smtp.received) == 1 and len(sms.messages()) == 1, what="the invitation")
        link = _link_in(smtp.received[0].message, base_url)
        assert link in sms.messages()[0]["text"]

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = await browser.new_page()
                # As a mail scanner would, before the parent: opening the link records nothing.
                await page.goto(link)
                await page.reload()
                await wait_until(lambda: page.url == link, what="the page open")
                assert await page.get_attribute("html", "lang") == language
                await page.get_by_label(coming).check()
                await page.get_by_role("button").click()
                await page.wait_for_load_state()
                assert confirmed in await page.inner_text("main")
            finally:
                await browser.close()

        async def one_answer_published() -> bool:
            async with TopicReader(kafka_bootstrap, invitations.topics.meeting_rsvp) as reader:
                return len(await reader.read_to_end()) == 1

        await wait_until(one_answer_published, within=30, what="meeting.rsvp on its topic")

    async with TopicReader(kafka_bootstrap, invitations.topics.meeting_rsvp) as reader:
        (record,) = await reader.read_to_end()
    assert record["data"]["guardian_id"] == guardian.guardian_id
    assert record["data"]["answer"] == "accepted"
    assert record["data"]["via"] == "web"


async def test_a_parent_who_declines_in_the_browser_gets_no_reminder(
    kafka_bootstrap: str, tmp_path: Path, smtp: SmtpSink, sms: SmsSink
) -> None:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    links = {
        "answer_link_keys": {KEY_ID: SecretStr(KEY)},
        "answer_link_signing_key_id": KEY_ID,
        "public_base_url": base_url,
    }
    invitations = invitations_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path, smtp=smtp, sms=sms)
    invitations = invitations.model_copy(update=links)
    responses = responses_settings(
        kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path, topic_prefix=invitations.topic_prefix, http_port=port
    )
    (tmp_path / "reminders").mkdir()
    reminders = reminders_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path / "reminders", smtp=smtp, sms=sms)
    reminders = reminders.model_copy(update={"topic_prefix": invitations.topic_prefix})
    await create_all_topics(kafka_bootstrap, invitations.topics)
    guardian = samples.sample_guardian(1)
    event = samples.meeting_created(recipients=[guardian])
    reminder_service = RemindersDeployment(reminders, TestClock(samples.SAMPLE_NOW), smtp, sms)

    async with Deployment(invitations, smtp, sms).running(), _served(responses), reminder_service.running() as runtime:
        async with EventPublisher(kafka_bootstrap, invitations.topics) as publisher:
            await publisher.publish(event)
        await wait_until(lambda: len(smtp.received) == 1, what="the invitation")
        link = _link_in(smtp.received[0].message, base_url)

        async def states() -> set[str]:
            async with runtime.store.engine.connect() as connection:
                rows = await connection.execute(
                    sa.select(reminder_rows.c.state).where(reminder_rows.c.guardian_id == guardian.guardian_id)
                )
                return {row.state for row in rows}

        async def scheduled() -> bool:
            return await states() == {"pending"}

        await wait_until(scheduled, within=30, what="the reminders scheduled")

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = await browser.new_page()
                await page.goto(link)
                await page.get_by_label("Nei, jeg kan ikke komme").check()
                await page.get_by_role("button").click()
                await page.wait_for_load_state()
                assert "Du har svart at du ikke kan komme." in await page.inner_text("main")
            finally:
                await browser.close()

        async def cancelled() -> bool:
            return await states() == {"cancelled"}

        await wait_until(cancelled, within=60, what="the declined guardian's reminders cancelled")
