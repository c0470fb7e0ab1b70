"""docs/operations.md stays true: every setting of every service is in its table."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from notify_digest.settings import DigestSettings
from notify_ingest.settings import IngestSettings
from notify_invitations.settings import InvitationsSettings
from notify_reminders.settings import RemindersSettings
from notify_responses.settings import ResponsesSettings

OPERATIONS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


@pytest.mark.parametrize(
    "settings_class", [InvitationsSettings, RemindersSettings, DigestSettings, IngestSettings, ResponsesSettings]
)
def test_every_setting_is_documented_in_the_operations_table(settings_class: type[BaseSettings]) -> None:
    table = OPERATIONS.read_text(encoding="utf-8")
    names = [str(field.validation_alias or name).upper() for name, field in settings_class.model_fields.items()]
    missing = [name for name in names if f"| `{name}` |" not in table]
    assert not missing, f"document these in docs/operations.md: {missing}"
