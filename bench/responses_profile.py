"""Where the answer page's time goes: N parents' GET and POST, one after the other, in-process under cProfile.

The service runs in this process (the app with its lifespan: database, real broker, relay) and is called through
httpx's ASGI transport, so the profile holds the service's own work and no network. Prints the functions with the
most time of their own and the most time inside them, for the GETs and for the POSTs. docs/benchmarks.md says
what was found.

    uv run python bench/responses_profile.py                                  # SQLite, 300 parents
    uv run python bench/responses_profile.py --database-url postgresql+asyncpg://postgres@127.0.0.1:55491/notify
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import tempfile
import time
from datetime import datetime
from pathlib import Path

from notify_responses.testing import isolated_settings, proof_in, running_responses
from notify_shared import samples
from notify_shared.answer_links import AnswerLinkKeys
from notify_shared.testing.kafka import EventPublisher
from notify_shared.testing.waiting import wait_until


def _report(profile: cProfile.Profile, title: str, rows: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).strip_dirs()
    for order in ("tottime", "cumulative"):
        out.write(f"\n=== {title}, by {order} ===\n")
        stats.sort_stats(order).print_stats(rows)
    return out.getvalue()


async def run(parents: int, database_url: str, bootstrap: str, rows: int) -> None:
    work = Path(tempfile.mkdtemp())
    settings = isolated_settings(
        kafka_bootstrap=bootstrap,
        work_dir=work,
        database_url=database_url,
        requests_per_client_per_minute=100_000,
        sms_auto_replies="off",
        # The default poll; the tests' 50 ms would have the relay read the outbox twenty times a second.
        relay_poll_interval=1.0,
    )
    meeting = samples.upcoming_meeting("m-profile", datetime.now(samples.OSLO))
    recipients = [samples.sample_guardian(number) for number in range(1, parents + 1)]
    event = samples.meeting_created(meeting=meeting, recipients=recipients)
    keys = AnswerLinkKeys.from_settings(settings)
    tokens = [
        keys.sign(
            school_id=event.data.school.id,
            meeting_id=meeting.meeting_id,
            guardian_id=guardian.guardian_id,
            expires_at=meeting.starts_at,
        )
        for guardian in recipients
    ]
    async with running_responses(settings) as responses:
        async with EventPublisher(bootstrap, settings.topics) as publisher:
            await publisher.publish(event)

        async def meeting_known() -> bool:
            return (await responses.open(tokens[-1])).status_code == 200

        await wait_until(meeting_known, within=60, what="the meeting known to the service")
        # Warm up: templates compiled, connections open.
        await responses.answer(tokens[0], answer="accepted")

        pages: list[str] = []
        get_profile = cProfile.Profile()
        started = time.perf_counter()
        get_profile.enable()
        for token in tokens[1:]:
            pages.append((await responses.open(token)).text)
        get_profile.disable()
        get_seconds = time.perf_counter() - started

        post_profile = cProfile.Profile()
        started = time.perf_counter()
        post_profile.enable()
        for token, page in zip(tokens[1:], pages, strict=True):
            form = {"proof": proof_in(page), "answer": "declined", "comment": "Vi kommer dessverre ikke."}
            assert (await responses.client.post(f"/r/{token}", data=form)).status_code == 200
        post_profile.disable()
        post_seconds = time.perf_counter() - started

    count = len(tokens) - 1
    print(f"GET: {1000 * get_seconds / count:.2f} ms each; POST: {1000 * post_seconds / count:.2f} ms each")
    print(_report(get_profile, "GET", rows))
    print(_report(post_profile, "POST", rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parents", type=int, default=300)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file in /tmp")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    parser.add_argument("--rows", type=int, default=25)
    arguments = parser.parse_args()
    database_url = arguments.database_url or f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'responses.db'}"
    asyncio.run(run(arguments.parents, database_url, arguments.bootstrap, arguments.rows))


if __name__ == "__main__":
    main()
