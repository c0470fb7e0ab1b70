"""What a guardian reads in a meeting invitation, update or cancellation, in bokmål, nynorsk and English."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notify_shared.contract.meetings import MeetingKind

from .render_factories import LANGUAGES, OSLO, TEMPLATES, earlier_meeting, guardian, meeting, render


def test_bokmal_invitation_says_what_when_and_where_and_greets_the_guardian() -> None:
    rendered = render("meeting_invitation", "nb")

    assert rendered.language == "nb"
    assert rendered.subject == "Invitasjon: Foreldremøte 7B, torsdag 3. desember 2026 kl. 18:00"
    assert rendered.text.startswith("Hei Kari Nordmann,\n")
    assert "Bjølsen skole inviterer deg til foreldremøte." in rendered.text
    assert "Tid: torsdag 3. desember 2026 kl. 18:00–19:30" in rendered.text
    assert "Sted: Rom 204" in rendered.text
    assert "Vi snakker om klasseturen til Sognsvann i mai og om leksehjelp.\nTa gjerne med forslag" in rendered.text
    assert "kalenderfil" in rendered.text
    assert rendered.text.rstrip().endswith(
        "Du får denne e-posten fordi du er registrert som foresatt ved Bjølsen skole."
    )
    assert "Vennlig hilsen\nMarte Kirkerud\nBjølsen skole" in rendered.text
    for part in ("Foreldremøte 7B", "torsdag 3. desember 2026 kl. 18:00–19:30", "Rom 204", "Kari Nordmann"):
        assert part in rendered.html


def test_nynorsk_invitation_is_written_in_nynorsk() -> None:
    rendered = render("meeting_invitation", "nn")

    assert rendered.language == "nn"
    assert "Stad: Rom 204" in rendered.text
    assert "Om du ikkje kan kome, gje gjerne beskjed til skulen." in rendered.text
    assert "Hjarteleg velkomen!" in rendered.text
    assert "Venleg helsing" in rendered.text
    assert "Tid: torsdag 3. desember 2026 kl. 18:00–19:30" in rendered.text
    assert rendered.text != render("meeting_invitation", "nb").text


def test_english_invitation_is_in_english_with_a_24_hour_clock() -> None:
    rendered = render("meeting_invitation", "en")

    assert rendered.language == "en"
    assert rendered.subject == "Invitation: Foreldremøte 7B, Thursday 3 December 2026 at 18:00"
    assert rendered.text.startswith("Dear Kari Nordmann,\n")
    assert "Bjølsen skole invites you to a parent meeting." in rendered.text
    assert "Time: Thursday 3 December 2026, 18:00–19:30" in rendered.text
    assert "Place: Rom 204" in rendered.text


@pytest.mark.parametrize(
    ("language", "sentence"),
    [
        ("nb", "Bjølsen skole inviterer deg til utviklingssamtale."),
        ("nn", "Bjølsen skole inviterer deg til utviklingssamtale."),
        ("en", "Bjølsen skole invites you to a development talk."),
    ],
)
def test_development_talk_is_named_as_such(language: str, sentence: str) -> None:
    talk = meeting(kind=MeetingKind.DEVELOPMENT_TALK, title="Utviklingssamtale for Emma", pupil_present=True)

    rendered = render("meeting_invitation", language, meeting=talk)

    assert sentence in rendered.text
    assert {
        "nb": "Barnet ditt er også invitert",
        "nn": "Barnet ditt er òg invitert",
        "en": "Your child is also",
    }[language] in rendered.text


def test_development_talk_without_the_pupil_says_so() -> None:
    talk = meeting(kind=MeetingKind.DEVELOPMENT_TALK, pupil_present=False)

    assert "Barnet ditt skal ikkje vere med på denne samtalen." in render("meeting_invitation", "nn", meeting=talk).text


def test_invitation_without_optional_fields_renders_without_gaps() -> None:
    bare = meeting(agenda=None, organizer_name=None)

    for language in LANGUAGES:
        rendered = render("meeting_invitation", language, meeting=bare)
        assert "None" not in rendered.text + rendered.html + rendered.sms
        assert "\n\n\n" not in rendered.text
    assert "Om møtet" not in render("meeting_invitation", "nb", meeting=bare).text
    assert "Vennlig hilsen\nBjølsen skole" in render("meeting_invitation", "nb", meeting=bare).text


def test_update_shows_the_new_and_the_old_time_and_place() -> None:
    rendered = render("meeting_update", "nb")

    assert rendered.subject.startswith("Ny tid og nytt sted: Foreldremøte 7B")
    assert "Foreldremøte 7B er flyttet til et nytt tidspunkt og et nytt sted." in rendered.text
    assert "Ny tid: torsdag 3. desember 2026 kl. 18:00–19:30\nTidligere: onsdag 2. desember 2026 kl. 18:00–19:30" in (
        rendered.text
    )
    assert "Nytt sted: Rom 204\nTidligere: Rom 101" in rendered.text
    assert "onsdag 2. desember 2026" in rendered.html
    assert "Rom 101" in rendered.html
    assert "Tidligere: onsdag 2. desember" in rendered.sms


def test_update_of_the_time_only_keeps_the_place_as_it_was() -> None:
    rendered = render("meeting_update", "nn", changes=frozenset({"time"}), previous=earlier_meeting(location="Rom 204"))

    assert rendered.subject == "Ny tid: Foreldremøte 7B, torsdag 3. desember 2026 kl. 18:00"
    assert "Foreldremøte 7B er flytta til eit nytt tidspunkt." in rendered.text
    assert "Ny tid: torsdag 3. desember 2026 kl. 18:00–19:30" in rendered.text
    assert "Stad: Rom 204" in rendered.text
    assert "Ny stad" not in rendered.text


def test_update_of_the_place_only_in_english() -> None:
    rendered = render("meeting_update", "en", changes=frozenset({"place"}), previous=earlier_meeting())

    assert rendered.subject == "New place: Foreldremøte 7B, Rom 204"
    assert "Foreldremøte 7B has been moved to a new place." in rendered.text
    assert "New place: Rom 204\nPreviously: Rom 101" in rendered.text
    assert "Time: Thursday 3 December 2026, 18:00–19:30" in rendered.text


def test_update_without_the_previous_state_still_gives_the_new_values() -> None:
    rendered = render("meeting_update", "nb", previous=None)

    assert "Ny tid: torsdag 3. desember 2026 kl. 18:00–19:30" in rendered.text
    assert "Tidligere" not in rendered.text


def test_cancellation_says_it_is_cancelled_and_shows_the_note() -> None:
    rendered = render("meeting_cancellation", "nb")

    assert rendered.subject == "Avlyst: Foreldremøte 7B, torsdag 3. desember 2026 kl. 18:00"
    assert (
        "Vi må dessverre avlyse Foreldremøte 7B, som skulle ha vært torsdag 3. desember 2026 kl. 18:00–19:30."
        in rendered.text
    )
    assert "Melding fra skolen:\nVi finner en ny dato i januar og sender en ny invitasjon." in rendered.text
    assert "Vi finner en ny dato i januar" in rendered.html
    assert "avlyse Foreldremøte 7B" in rendered.sms


def test_cancellation_without_a_note_leaves_the_note_out() -> None:
    for language in LANGUAGES:
        rendered = render("meeting_cancellation", language, cancellation_note=None)
        assert "Melding" not in rendered.text
        assert "Message from" not in rendered.text
        assert "None" not in rendered.text + rendered.sms


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_renders_every_part_in_every_language(template: str, language: str) -> None:
    rendered = render(template, language)

    assert rendered.template == template
    assert rendered.language == language
    assert rendered.direction == "ltr"
    assert rendered.subject
    assert "\n" not in rendered.subject
    assert rendered.text.endswith("\n")
    assert not rendered.text.endswith("\n\n")
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{language}" dir="ltr">' in rendered.html
    assert "Foreldremøte 7B" in rendered.subject
    assert "Kari Nordmann" in rendered.text
    assert "Kari Nordmann" in rendered.sms
    assert "Bjølsen skole" in rendered.sms


@pytest.mark.parametrize("template", TEMPLATES)
def test_notifications_never_carry_a_home_address_or_contact_details(template: str) -> None:
    # The guardian's e-mail address and phone number travel in the envelope, never in the body.
    rendered = render(template, "nb", guardian=guardian())

    everything = rendered.subject + rendered.text + rendered.html + rendered.sms
    assert "kari.nordmann@example.no" not in everything
    assert "91234567" not in everything


def test_the_sms_mentions_the_email_only_when_the_guardian_gets_one() -> None:
    sms_only = guardian(channels=("sms",))

    assert "e-post" in render("meeting_invitation", "nb").sms
    assert "e-post" not in render("meeting_invitation", "nb", guardian=sms_only).sms
    bad_address = guardian(email="kari.nordmann@")
    assert "e-post" not in render("meeting_invitation", "nb", guardian=bad_address).sms


def test_a_meeting_sent_with_a_utc_offset_is_shown_in_school_time() -> None:
    utc_meeting = meeting(
        starts_at=datetime(2026, 12, 3, 17, 0, tzinfo=UTC), ends_at=datetime(2026, 12, 3, 18, 30, tzinfo=UTC)
    )

    assert "kl. 18:00–19:30" in render("meeting_invitation", "nb", meeting=utc_meeting).text


def test_a_meeting_past_midnight_shows_both_dates() -> None:
    late = meeting(
        starts_at=datetime(2026, 12, 3, 23, 0, tzinfo=OSLO), ends_at=datetime(2026, 12, 4, 0, 30, tzinfo=OSLO)
    )

    assert (
        "torsdag 3. desember 2026 kl. 23:00 – fredag 4. desember 2026 kl. 00:30"
        in render("meeting_invitation", "nb", meeting=late).text
    )
