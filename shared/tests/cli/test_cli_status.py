"""`notify status`: what an operator reads back from the delivery ledger, as tables of ids and counts."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner, Result

from notify_shared.cli import app
from notify_shared.ledger import DeliveryKey, DeliveryLedger, DeliveryStatus

MEETING_CREATED = "01JD8X4K2M7Q9W3E5R6T8Y0U1I"
OSLO_SCHOOL = "nor-0301-4012"
BERGEN_SCHOOL = "nor-4601-2207"
START = datetime(2025, 3, 7, 7, 30, tzinfo=UTC)
VISMA = "/visma-flyt/0301"


class SteppingClock:
    """A clock that moves a second on each reading, so history steps have distinct, known times."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        moment = self.now
        self.now += timedelta(seconds=1)
        return moment


async def record_deliveries(database_url: str) -> dict[str, str]:
    """Three notifications of one meeting in Oslo, and two of another event in Bergen; their ids by name."""
    ids: dict[str, str] = {}
    async with await DeliveryLedger.connect(database_url, clock=SteppingClock(START)) as ledger:
        outcomes = {
            "email-g1": (
                DeliveryKey(OSLO_SCHOOL, VISMA, MEETING_CREATED, "g-1001", "email", "meeting_invitation"),
                OSLO_SCHOOL,
            ),
            "sms-g1": (
                DeliveryKey(OSLO_SCHOOL, VISMA, MEETING_CREATED, "g-1001", "sms", "meeting_invitation"),
                OSLO_SCHOOL,
            ),
            "email-g2": (
                DeliveryKey(OSLO_SCHOOL, VISMA, MEETING_CREATED, "g-1002", "email", "meeting_invitation"),
                OSLO_SCHOOL,
            ),
            "bergen-1": (
                DeliveryKey(BERGEN_SCHOOL, VISMA, "evt-bergen", "g-2001", "sms", "absence_notice"),
                BERGEN_SCHOOL,
            ),
            "bergen-2": (
                DeliveryKey(BERGEN_SCHOOL, VISMA, "evt-bergen", "g-2002", "sms", "absence_notice"),
                BERGEN_SCHOOL,
            ),
        }
        for name, (key, school) in outcomes.items():
            claim = await ledger.begin(key, source_event_type="meeting.created", school_id=school, language="nb")
            ids[name] = claim.notification_id
        await ledger.record(ids["email-g1"], DeliveryStatus.SENT)
        await ledger.record(ids["email-g2"], DeliveryStatus.SENT)
        await ledger.record(ids["sms-g1"], DeliveryStatus.SENT)
        await ledger.record(ids["sms-g1"], DeliveryStatus.DELIVERED)
        await ledger.record(ids["bergen-1"], DeliveryStatus.FAILED, reason="missing_phone")
        await ledger.record(ids["bergen-2"], DeliveryStatus.FAILED, reason="missing_phone")
    return ids


def notify(*args: str) -> Result:
    # Wide enough that rich neither wraps nor cuts the ids in the table cells.
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def cells(output: str) -> list[list[str]]:
    """The table's rows as lists of stripped cell texts."""
    return [[cell.strip() for cell in re.split(r"[│┃]", line)[1:-1]] for line in output.splitlines() if "│" in line]


async def test_status_counts_notifications_per_school_channel_and_status_in_the_window(database_url: str) -> None:
    await record_deliveries(database_url)

    result = await asyncio.to_thread(
        notify,
        "status",
        "--database-url",
        database_url,
        "--since",
        "2025-03-07T07:00:00Z",
        "--until",
        "2025-03-07T08:00:00+00:00",
    )

    assert result.exit_code == 0, result.output
    assert cells(result.output) == [
        ["nor-0301-4012", "email", "sent", "2"],
        ["nor-0301-4012", "sms", "delivered", "1"],
        ["nor-4601-2207", "sms", "failed", "2"],
        ["Total", "", "", "5"],
    ]


async def test_status_window_leaves_out_notifications_created_outside_it(database_url: str) -> None:
    await record_deliveries(database_url)

    # The default window is the last 24 hours; these were created in 2025.
    result = await asyncio.to_thread(notify, "status", "--database-url", database_url)

    assert result.exit_code == 0, result.output
    assert cells(result.output) == [["Total", "", "", "0"]]


async def test_status_of_an_event_shows_each_notification_with_its_history(database_url: str) -> None:
    ids = await record_deliveries(database_url)

    result = await asyncio.to_thread(notify, "status", "--database-url", database_url, "--event", MEETING_CREATED)

    assert result.exit_code == 0, result.output
    rows = [row for row in cells(result.output) if any(row)]
    # One line per history step; the first line of each notification carries its facts.
    firsts = [row[:7] for row in rows if row[0]]
    assert sorted(firsts) == sorted(
        [
            [ids["email-g1"], VISMA, "g-1001", "email", "meeting_invitation", "nb", "sent"],
            [ids["sms-g1"], VISMA, "g-1001", "sms", "meeting_invitation", "nb", "delivered"],
            [ids["email-g2"], VISMA, "g-1002", "email", "meeting_invitation", "nb", "sent"],
        ]
    )
    sms_steps = [row[7] for row in rows[[row[0] for row in rows].index(ids["sms-g1"]) :][:3]]
    assert [step.split(" ", 1)[1] for step in sms_steps] == ["sending", "sent", "delivered"]
    assert all(re.fullmatch(r"2025-03-07T07:3\d:\d\dZ \w+", step) for step in sms_steps)
    assert "evt-bergen" not in result.output
    assert "g-2001" not in result.output


async def test_status_of_an_unknown_event_says_so(database_url: str) -> None:
    await record_deliveries(database_url)

    result = await asyncio.to_thread(notify, "status", "--database-url", database_url, "--event", "no-such-event")

    assert result.exit_code == 1
    assert "no notifications for event no-such-event" in result.output


def notify_at_80_columns(*args: str) -> Result:
    # CliRunner's output is a pipe, as with `notify status | less`; 80 columns is a default terminal.
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "80"})


async def test_at_80_columns_or_in_a_pipe_every_id_of_an_event_is_printed_whole_on_its_line(
    database_url: str,
) -> None:
    ids = await record_deliveries(database_url)

    result = await asyncio.to_thread(
        notify_at_80_columns, "status", "--database-url", database_url, "--event", MEETING_CREATED
    )

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines)
    for name in ("email-g1", "sms-g1", "email-g2"):
        assert [line.split() for line in lines if ids[name] in line] == [["notification", ids[name]]]
    assert sum(line.split() == ["guardian", "g-1001"] for line in lines) == 2
    sms_block = lines[lines.index(f"notification  {ids['sms-g1']}") :][:10]
    assert [line.split()[-1] for line in sms_block[-3:]] == ["sending", "sent", "delivered"]


async def test_at_80_columns_the_counts_stay_a_table(database_url: str) -> None:
    await record_deliveries(database_url)

    result = await asyncio.to_thread(
        notify_at_80_columns, "status", "--database-url", database_url, "--since", "2025-03-07T07:00:00Z"
    )

    assert result.exit_code == 0, result.output
    assert ["nor-0301-4012", "sms", "delivered", "1"] in cells(result.output)


async def test_status_as_json_gives_the_counts_of_the_window(database_url: str) -> None:
    await record_deliveries(database_url)

    result = await asyncio.to_thread(
        notify,
        "status",
        "--json",
        "--database-url",
        database_url,
        "--since",
        "2025-03-07T07:00:00Z",
        "--until",
        "2025-03-07T08:00:00Z",
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "since": "2025-03-07T07:00:00Z",
        "until": "2025-03-07T08:00:00Z",
        "counts": [
            {"school_id": OSLO_SCHOOL, "channel": "email", "status": "sent", "count": 2},
            {"school_id": OSLO_SCHOOL, "channel": "sms", "status": "delivered", "count": 1},
            {"school_id": BERGEN_SCHOOL, "channel": "sms", "status": "failed", "count": 2},
        ],
        "total": 5,
    }


async def test_status_of_an_event_as_json_gives_each_notification_and_its_history(database_url: str) -> None:
    ids = await record_deliveries(database_url)

    result = await asyncio.to_thread(
        notify, "status", "--json", "--database-url", database_url, "--event", MEETING_CREATED
    )

    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["event_id"] == MEETING_CREATED
    by_id = {notification["notification_id"]: notification for notification in document["notifications"]}
    assert sorted(by_id) == sorted([ids["email-g1"], ids["sms-g1"], ids["email-g2"]])
    sms = by_id[ids["sms-g1"]]
    assert (sms["guardian_id"], sms["channel"], sms["status"], sms["school_id"]) == (
        "g-1001",
        "sms",
        "delivered",
        OSLO_SCHOOL,
    )
    assert [step["status"] for step in sms["history"]] == ["sending", "sent", "delivered"]

    unknown = await asyncio.to_thread(
        notify, "status", "--json", "--database-url", database_url, "--event", "no-such-event"
    )
    assert unknown.exit_code == 1
    assert json.loads(unknown.output) == {"event_id": "no-such-event", "source": None, "notifications": []}


async def test_status_of_an_event_id_two_sources_used_names_each_source_and_narrows_to_one(database_url: str) -> None:
    ids = await record_deliveries(database_url)
    # Another admin system of the same school numbered one of its events the same way.
    async with await DeliveryLedger.connect(database_url) as ledger:
        other = DeliveryKey(OSLO_SCHOOL, "/ist-extens/0301", MEETING_CREATED, "g-1001", "email", "meeting_invitation")
        claim = await ledger.begin(other, source_event_type="meeting.created", school_id=OSLO_SCHOOL, language="nb")

    both = await asyncio.to_thread(
        notify, "status", "--json", "--database-url", database_url, "--event", MEETING_CREATED
    )
    narrowed = await asyncio.to_thread(
        notify, "status", "--database-url", database_url, "--event", MEETING_CREATED, "--source", "/ist-extens/0301"
    )

    assert both.exit_code == 0, both.output
    sources = {n["notification_id"]: n["source"] for n in json.loads(both.output)["notifications"]}
    assert sources == {
        ids["email-g1"]: VISMA,
        ids["sms-g1"]: VISMA,
        ids["email-g2"]: VISMA,
        claim.notification_id: "/ist-extens/0301",
    }
    assert narrowed.exit_code == 0, narrowed.output
    assert f"event {MEETING_CREATED} from /ist-extens/0301" in narrowed.output
    assert [row[:3] for row in cells(narrowed.output) if row[0]] == [
        [claim.notification_id, "/ist-extens/0301", "g-1001"]
    ]
