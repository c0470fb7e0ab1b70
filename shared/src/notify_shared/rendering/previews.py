"""Realistic template contexts for previews, screenshots and the every-template-in-every-language test.

Each context is what the service that sends the template passes it, built from `notify_shared.samples`: the
same school, meeting, message and absence the demo publishes. Long enough to be honest about SMS budgets
(a real room name, a two-line agenda, an organizer), short of the extremes the rendering tests cover.
"""

from __future__ import annotations

from datetime import date, timedelta

from notify_shared import samples
from notify_shared.contract import Recipient
from notify_shared.rendering.digest_context import DigestAbsence, DigestMessage, DigestSection
from notify_shared.rendering.languages import canonical_tag
from notify_shared.rendering.renderer import UnknownTemplateError, template_names

# A name the guardian could have, so a preview reads like a real one. The samples' names are all in Latin
# script, as the population register has them whatever language the guardian reads.
_GUARDIAN_BY_LANGUAGE = {"pl": 4, "uk": 5, "ar": 3, "ur": 3, "prs": 3, "ps": 3}


def sample_guardian(language: str) -> Recipient:
    """The sample guardian for `language`, who wants e-mail and SMS in it."""
    number = _GUARDIAN_BY_LANGUAGE.get(canonical_tag(language).split("-", 1)[0], 1)
    return samples.sample_guardian(number, language=language)


def _digest_sections() -> tuple[DigestSection, ...]:
    message = samples.message_posted().data
    absence = samples.absence_noted().data
    week_start = date(2026, 11, 30)
    return (
        DigestSection(
            heading=f"{absence.pupil.first_name} ({absence.pupil.class_name})",
            messages=(
                DigestMessage(
                    subject=message.subject,
                    body=message.body,
                    author_name=message.author_name,
                    posted_at=message.posted_at,
                    urgent=message.urgent,
                    class_name=message.class_name,
                ),
            ),
            absences=(
                DigestAbsence(
                    pupil_first_name=absence.pupil.first_name,
                    class_name=absence.pupil.class_name,
                    date=week_start + timedelta(days=2),
                    lessons=absence.lessons,
                    reported_by_guardian=False,
                ),
            ),
        ),
    )


def sample_context(template: str, language: str = "nb") -> dict[str, object]:  # noqa: PLR0911 - one return per template reads best
    """The context `template` gets for a guardian who reads `language`.

    Raises `UnknownTemplateError` for a name that has no template.
    """
    if template not in template_names():
        raise UnknownTemplateError(f"no notification template named {template!r}")
    school = samples.sample_school()
    guardian = sample_guardian(language)
    meeting = samples.sample_meeting()
    common: dict[str, object] = {"school": school, "guardian": guardian}
    # The link the invitations service puts in invitations and updates (notify_shared.answer_links): a token is
    # always 35 characters, so this one has the length a real link has.
    answer_url = "https://svar.bjolsen.example/r/a" + "x" * 34
    if template in ("meeting_invitation", "meeting_reminder"):
        link = {"answer_url": answer_url} if template == "meeting_invitation" else {}
        return common | {"meeting": meeting, "moved": False} | link
    if template == "meeting_update":
        # The update the CLI's sample publishes: moved to the gym hall, and a week later.
        moved = samples.sample_meeting(
            location="Gymsalen, Bjølsen skole",
            starts_at=meeting.starts_at + timedelta(days=7),
            ends_at=meeting.ends_at + timedelta(days=7),
        )
        return common | {
            "meeting": moved,
            "previous": meeting,
            "changes": frozenset({"time", "place"}),
            "answer_url": answer_url,
        }
    if template == "meeting_cancellation":
        cancelled = samples.meeting_cancelled(meeting=meeting).data
        return common | {"meeting": meeting, "cancellation_note": cancelled.cancellation_note}
    if template == "message_notice":
        message = samples.message_posted().data
        return common | {"message": message, "urgent": message.urgent}
    if template == "absence_notice":
        # Never the reason: the sample event has one ("Syk"), and no template may ever see it.
        absence = samples.absence_noted().data
        return common | {"pupil": absence.pupil, "date": absence.date, "lessons": absence.lessons}
    if template == "digest":
        sections = _digest_sections()
        return common | {
            "period": "weekly",
            "period_start": date(2026, 11, 30),
            "period_end": date(2026, 12, 4),
            "sections": sections,
            "message_count": sum(len(section.messages) for section in sections),
            "absence_count": sum(len(section.absences) for section in sections),
        }
    if template == "sms_reply":
        # The responses service's answer to an SMS reply it could not read (notify_responses.auto_replies).
        return common | {"reply_kind": "not_understood", "answer": None}
    if template in ("talk_booked", "talk_moved", "talk_cancelled"):
        # A development talk as the responses service confirms it (notify_responses.talks_confirmations).
        talk = samples.sample_meeting(
            meeting_id="talk-7b-host-p-1",
            kind="development_talk",
            title="Utviklingssamtale 7B",
            ends_at=meeting.starts_at + timedelta(minutes=20),
            agenda=None,
        )
        return common | {"meeting": talk, "pupil_name": "Emma"}
    if template == "talk_invitation":
        # The booking invitation the responses service sends when booking opens; a booking link is as long as an
        # answer link.
        booking_url = "https://svar.bjolsen.example/b/a" + "x" * 34
        return common | {"pupil_name": "Emma", "closes_at": meeting.starts_at, "booking_url": booking_url}
    raise UnknownTemplateError(f"no sample context for template {template!r}")  # a new template needs one here
