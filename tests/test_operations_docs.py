"""docs/operations.md stays true: every setting of every service is in its table."""

from __future__ import annotations

import re
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


REPOSITORY = OPERATIONS.parents[1]


@pytest.mark.parametrize("document", sorted([*REPOSITORY.glob("docs/*.md"), REPOSITORY / "README.md"]), ids=str)
def test_the_docs_link_only_to_files_inside_the_repository(document: Path) -> None:
    # A reader of a clone, a release archive or the rendered docs has the repository and nothing beside it.
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", document.read_text(encoding="utf-8"))
    outside = [
        target
        for target in targets
        if "://" not in target
        and not target.startswith("mailto:")
        and not (document.parent / target).resolve().is_relative_to(REPOSITORY)
    ]
    missing = [target for target in targets if "://" not in target and not (document.parent / target).exists()]
    assert outside == []
    assert missing == []
