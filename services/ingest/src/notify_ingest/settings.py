"""The ingest service's settings: the shared ones plus its own, prefixed `INGEST_`."""

from __future__ import annotations

import json
import unicodedata
from datetime import timedelta
from typing import Annotated, Any

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from notify_ingest.auth import StoredKey, UnusableKeyError, stored_key
from notify_shared.contract import School
from notify_shared.contract.text import Identifier, OneLine
from notify_shared.ledger.database import DatabaseUrl
from notify_shared.settings import Duration, ServiceSettings


class AllowedSchool(BaseModel):
    """What a school's events must say about the school: the name and SMS sender id its parents know."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: OneLine = Field(description="The school's name, exactly as its events carry it in data.school.name.")
    sms_sender_id: str = Field(description="The only SMS sender id its events may carry (data.school.sms_sender_id).")

    @model_validator(mode="after")
    def _valid_in_an_event(self) -> AllowedSchool:
        # Checked by the contract's own model, so a setting can never allow what no event could carry.
        try:
            School(id="settings-check", name=self.name, sms_sender_id=self.sms_sender_id)
        except ValidationError as error:
            fields = sorted({str(issue["loc"][0]) for issue in error.errors() if issue["loc"]})
            raise ValueError(f"{fields} would not be valid in an event (docs/contract.md)") from None
        return self

    def same_name(self, name: str) -> bool:
        # Composed and decomposed "ø" look the same to a parent, so they are the same name.
        return unicodedata.normalize("NFC", name) == unicodedata.normalize("NFC", self.name)


class IngestSettings(ServiceSettings):
    """Environment of the ingest service; see docs/operations.md for the full table."""

    # validate_by_name: tests and tools may pass `api_keys=`; the environment uses the prefixed alias.
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True, validate_by_name=True)

    # NoDecode: the JSON is parsed by `_parse_api_keys`, so a malformed value is a validation error that names
    # INGEST_API_KEYS (pydantic-settings' own decoding raises an error that load_settings cannot describe).
    api_keys: Annotated[dict[Identifier, StoredKey], NoDecode] = Field(
        validation_alias="INGEST_API_KEYS",
        description='JSON object mapping each school id to the SHA-256 of its API key, e.g. {"nor-0301-bjolsen": '
        '"sha256:…"}; a plain key is still accepted, with a warning at start-up.',
    )
    schools: Annotated[dict[Identifier, AllowedSchool], NoDecode] = Field(
        validation_alias="INGEST_SCHOOLS",
        description='JSON object: school id → {"name": …, "sms_sender_id": …}, the only values its events may carry.',
    )
    sms_countries: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset({"NO"}),
        validation_alias="INGEST_SMS_COUNTRIES",
        description="Comma-separated ISO 3166 country codes whose phone numbers an event may carry.",
    )
    rate_per_second: float = Field(
        default=1.0,
        gt=0,
        le=10_000,
        validation_alias="INGEST_RATE_PER_SECOND",
        description="Requests per second each API key may make over time; more are answered 429.",
    )
    rate_burst: int = Field(
        default=60,
        ge=1,
        le=1_000_000,
        validation_alias="INGEST_RATE_BURST",
        description="Requests an API key may make at once before INGEST_RATE_PER_SECOND applies.",
    )
    auth_failure_limit: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        validation_alias="INGEST_AUTH_FAILURE_LIMIT",
        description="Requests with a missing or wrong key one client address may make within "
        "INGEST_AUTH_FAILURE_WINDOW before its requests are answered 429.",
    )
    auth_failure_window: Duration = Field(
        default=timedelta(seconds=60),
        validation_alias="INGEST_AUTH_FAILURE_WINDOW",
        description="The window of INGEST_AUTH_FAILURE_LIMIT.",
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
    def _stored_keys(cls, value: Any) -> Any:
        keys = _json_object(value)
        if not isinstance(keys, dict):
            return keys
        if not keys:
            raise ValueError("give at least one school id and its API key")
        stored: dict[Any, StoredKey] = {}
        problems: dict[str, list[str]] = {}
        for school, configured in keys.items():
            if not isinstance(configured, str | StoredKey) and not hasattr(configured, "get_secret_value"):
                problems.setdefault("is not a string", []).append(str(school))
                continue
            try:
                stored[school] = stored_key(configured)
            except UnusableKeyError as problem:
                problems.setdefault(str(problem), []).append(str(school))
        if problems:
            # School ids and the kind of problem only: the values are secrets.
            raise ValueError("; ".join(f"the key of {sorted(schools)} {why}" for why, schools in problems.items()))
        digests = [key.sha256 for key in stored.values()]
        if len(set(digests)) != len(digests):
            # A key must say which school is calling; one shared by two schools cannot.
            raise ValueError("two schools have the same API key; give each school its own")
        return stored

    @field_validator("schools", mode="before")
    @classmethod
    def _parse_schools(cls, value: Any) -> Any:
        return _json_object(value)

    @field_validator("sms_countries", mode="before")
    @classmethod
    def _parse_countries(cls, value: Any) -> Any:
        codes = [code.strip().upper() for code in value.split(",")] if isinstance(value, str) else value
        if isinstance(codes, list | set | frozenset | tuple):
            codes = {str(code) for code in codes if code}
            if not codes:
                raise ValueError("name at least one country, e.g. NO")
            unknown = sorted(code for code in codes if code not in phonenumbers.SUPPORTED_REGIONS)
            if unknown:
                raise ValueError(f"{unknown} are not ISO 3166 country codes with phone numbers, e.g. NO, SE, DK")
        return codes

    @field_validator("auth_failure_window")
    @classmethod
    def _positive_window(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0) or value > timedelta(days=1):
            raise ValueError("give a duration above zero and at most a day, e.g. 60 or PT1M")
        return value

    @model_validator(mode="after")
    def _every_keyed_school_is_described(self) -> IngestSettings:
        missing = sorted(set(self.api_keys) - set(self.schools))
        if missing:
            raise ValueError(
                f"INGEST_SCHOOLS has no entry for {missing}, which have API keys: give each its name and SMS sender id"
            )
        return self

    @property
    def plain_key_schools(self) -> list[str]:
        """Schools whose key is configured in plain text rather than as its SHA-256."""
        return sorted(school for school, key in self.api_keys.items() if key.configured_plain)

    @property
    def claim_lease_seconds(self) -> float:
        """How long a request that is publishing an event id keeps other requests for that id from publishing
        it: longer than one publish may take, so a live publisher is never overtaken."""
        return 2 * self.publish_timeout_seconds + 5


def _json_object(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        # Only the position: the value may hold secrets.
        raise ValueError(f"not a JSON object ({error.msg} at character {error.pos})") from None
