"""What a school's key may ask for beyond the contract: the school's own name and SMS sender id, and SMS only to
the countries the deployment serves.

The contract lets any event name any sender and any number; these checks stop a leaked or misused key from
sending SMS under another name ("Politiet") or to premium numbers abroad on the school owner's account.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

import phonenumbers

from notify_ingest.ingestion import FieldProblem
from notify_ingest.settings import AllowedSchool
from notify_shared.contract import Channel, CloudEvent, Recipient, School, TalkRound


class SchoolPolicy:
    """The problems of an event (already valid, and of the caller's own school) with the deployment's limits."""

    def __init__(self, schools: Mapping[str, AllowedSchool], sms_countries: Set[str]) -> None:
        self._schools = dict(schools)
        self._sms_countries = frozenset(sms_countries)
        self._countries_text = ", ".join(sorted(self._sms_countries))

    def problems(self, event: CloudEvent) -> tuple[FieldProblem, ...]:
        data = getattr(event, "data", None)
        school = getattr(data, "school", None)
        assert isinstance(school, School), f"{event.type} carries no school block"
        problems = list(self._school_problems(school))
        for path, recipient in _recipients_of(data):
            # Every usable number counts, whatever the guardian's channels: a failed email falls back to SMS. A
            # number the contract found invalid is never texted.
            if recipient.phone is None or recipient.contact_problem(Channel.SMS) is not None:
                continue
            if self._country_of(recipient.phone) not in self._sms_countries:
                problems.append(
                    FieldProblem(
                        f"{path}.phone",
                        f"SMS may go only to numbers of {self._countries_text} here (INGEST_SMS_COUNTRIES); "
                        "leave this number out or ask the operator",
                    )
                )
        return tuple(problems)

    def _school_problems(self, school: School) -> list[FieldProblem]:
        allowed = self._schools.get(school.id)
        if allowed is None:  # the settings refuse a key without an entry; kept so no path skips the check
            return [FieldProblem("data.school.id", "this school has no entry in INGEST_SCHOOLS")]
        problems = []
        if school.sms_sender_id != allowed.sms_sender_id:
            problems.append(
                FieldProblem(
                    "data.school.sms_sender_id",
                    "not the SMS sender id set for this school (INGEST_SCHOOLS); ask the operator to change it",
                )
            )
        if not allowed.same_name(school.name):
            problems.append(
                FieldProblem(
                    "data.school.name",
                    "not the name set for this school (INGEST_SCHOOLS); ask the operator to change it",
                )
            )
        return problems

    @staticmethod
    def _country_of(phone: str) -> str | None:
        # `phone` is valid E.164: the contract normalised it.
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone))


def _recipients_of(data: object) -> list[tuple[str, Recipient]]:
    """Every guardian an event may notify, with the path of their block: a meeting's or message's `recipients`, or
    the guardians of each pupil of a round of development talks."""
    if isinstance(data, TalkRound):
        return [
            (f"data.pupils.{pupil_index}.guardians.{index}", guardian)
            for pupil_index, pupil in enumerate(data.pupils)
            for index, guardian in enumerate(pupil.guardians)
        ]
    recipients: tuple[Recipient, ...] = getattr(data, "recipients", ())
    return [(f"data.recipients.{index}", recipient) for index, recipient in enumerate(recipients)]
