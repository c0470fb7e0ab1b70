"""The ingest service's settings: the shared ones plus its own, prefixed `INGEST_`."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from notify_shared.contract.text import Identifier
from notify_shared.ledger.database import DatabaseUrl
from notify_shared.settings import ServiceSettings

MIN_API_KEY_LENGTH = 16
"""Shorter keys could be guessed; `python -c 'import secrets; print(secrets.token_urlsafe(32))'` makes a good one."""


class IngestSettings(ServiceSettings):
    """Environment of the ingest service; see docs/operations.md for the full table."""

    # validate_by_name: tests and tools may pass `api_keys=`; the environment uses the prefixed alias.
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True, validate_by_name=True)

    # NoDecode: the JSON is parsed by `_parse_api_keys`, so a malformed value is a validation error that names
    # INGEST_API_KEYS (pydantic-settings' own decoding raises an error that load_settings cannot describe).
    api_keys: Annotated[dict[Identifier, SecretStr], NoDecode] = Field(
        validation_alias="INGEST_API_KEYS",
        description='JSON object mapping each school id to its API key, e.g. {"nor-0301-bjolsen": "…"}.',
    )
    database_url: DatabaseUrl = Field(
        default="sqlite+aiosqlite:///./.local/ingest.db",
        validation_alias="INGEST_DATABASE_URL",
        description="SQLAlchemy async URL of the accepted event ids. PostgreSQL for replicas.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        validation_alias="INGEST_MAX_BODY_BYTES",
        description="Largest request body accepted; a larger one is answered 413.",
    )
    publish_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        validation_alias="INGEST_PUBLISH_TIMEOUT_SECONDS",
        description="How long one publish to Kafka may take before the request is answered 503 (retry it).",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            # Only the position: the value holds secrets.
            raise ValueError(f"not a JSON object ({error.msg} at character {error.pos})") from None

    @field_validator("api_keys")
    @classmethod
    def _usable_keys(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        if not keys:
            raise ValueError("give at least one school id and its API key")
        short = sorted(school for school, key in keys.items() if len(key.get_secret_value()) < MIN_API_KEY_LENGTH)
        if short:
            raise ValueError(f"the keys of {short} are shorter than {MIN_API_KEY_LENGTH} characters")
        secrets = [key.get_secret_value() for key in keys.values()]
        if len(set(secrets)) != len(secrets):
            # A key must say which school is calling; one shared by two schools cannot.
            raise ValueError("two schools have the same API key; give each school its own")
        return keys

    @property
    def claim_lease_seconds(self) -> float:
        """How long a request that is publishing an event id keeps other requests for that id from publishing
        it: longer than one publish may take, so a live publisher is never overtaken."""
        return 2 * self.publish_timeout_seconds + 5
