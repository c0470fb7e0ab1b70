"""`notify sample`: an integrator's starting point for every input event, set now so the services act on it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from notify_shared.cli import app
from notify_shared.contract import INPUT_EVENT_TYPES


@pytest.mark.parametrize("event_type", sorted(INPUT_EVENT_TYPES))
def test_every_input_event_type_has_a_sample_that_keeps_the_contract(event_type: str) -> None:
    result = CliRunner().invoke(app, ["sample", event_type])

    assert result.exit_code == 0, result.output
    event = INPUT_EVENT_TYPES[event_type].model_validate_json(result.stdout)
    assert event.type == event_type
    assert event.time is not None
    assert abs(event.time - datetime.now(UTC)) < timedelta(minutes=5)


def test_the_message_sample_goes_to_the_digest_unless_asked_to_be_urgent() -> None:
    for_the_digest = json.loads(CliRunner().invoke(app, ["sample", "message.posted"]).stdout)
    urgent = json.loads(CliRunner().invoke(app, ["sample", "message.posted", "--urgent"]).stdout)

    assert for_the_digest["data"]["urgent"] is False
    assert urgent["data"]["urgent"] is True


def test_the_absence_sample_is_about_today_in_the_schools_time_zone() -> None:
    absence = json.loads(CliRunner().invoke(app, ["sample", "absence.noted"]).stdout)

    noted_at = datetime.fromisoformat(absence["time"])
    assert (
        absence["data"]["date"]
        == noted_at.astimezone(ZoneInfo(absence["data"]["school"]["timezone"])).date().isoformat()
    )


def test_an_unknown_sample_names_the_ones_there_are() -> None:
    result = CliRunner().invoke(app, ["sample", "pupil.enrolled"])

    assert result.exit_code == 2
    assert "absence.noted" in result.output
    assert "message.posted" in result.output
