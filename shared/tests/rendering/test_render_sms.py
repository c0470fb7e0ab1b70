"""SMS: the encoding and the number of billed segments, and invitations that stay short and say everything."""

from __future__ import annotations

import pytest

from notify_shared.rendering import gsm7_friendly, sms_encoding, sms_segments
from notify_shared.rendering.sms import GSM7_BASIC, GSM7_EXTENSION

from .render_factories import LANGUAGES, TEMPLATES, meeting, render


def test_the_gsm7_tables_have_the_right_size() -> None:
    assert len(GSM7_BASIC) == 127  # 128 code points, less the escape to the extension table
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION
    assert set("æøåÆØÅ") <= GSM7_BASIC


def test_160_gsm_characters_are_one_segment_and_161_are_two() -> None:
    assert sms_segments("a" * 160) == 1
    assert sms_segments("a" * 161) == 2
    assert sms_segments("æøå" * 53 + "a") == 1


def test_long_gsm_messages_take_153_septets_per_part() -> None:
    assert sms_segments("a" * 306) == 2
    assert sms_segments("a" * 307) == 3


def test_extension_characters_count_two_septets() -> None:
    assert sms_encoding("Pris: 50 €") == "GSM-7"
    assert sms_segments("€" * 80) == 1
    assert sms_segments("€" * 81) == 2
    assert sms_segments("a" * 159 + "€") == 2


def test_an_escape_sequence_is_not_split_between_parts() -> None:
    # 152 septets, then a two-septet euro that does not fit in the first part's 153.
    assert sms_segments("a" * 152 + "€" + "a" * 152) == 3


def test_any_character_outside_gsm7_makes_it_ucs2_with_70_and_67() -> None:
    assert sms_encoding("مرحبا") == "UCS-2"
    assert sms_encoding("Hei 👋") == "UCS-2"
    assert sms_segments("م" * 70) == 1
    assert sms_segments("م" * 71) == 2
    assert sms_segments("م" * 134) == 2
    assert sms_segments("م" * 135) == 3
    assert sms_segments("a" * 69 + "م") == 1


def test_ucs2_counts_utf16_code_units() -> None:
    assert sms_segments("👋" * 35) == 1
    assert sms_segments("👋" * 36) == 2


def test_empty_text_is_one_message() -> None:
    assert sms_segments("") == 1
    assert sms_encoding("") == "GSM-7"


def test_typographic_punctuation_is_made_plain_when_that_keeps_gsm7() -> None:
    assert gsm7_friendly("kl. 18:00–19:30 «Rom 204» … it’s") == 'kl. 18:00-19:30 "Rom 204" ... it\'s'
    # Arabic needs UCS-2 anyway: nothing is replaced, the marks may matter.
    assert gsm7_friendly("١٨:٠٠–١٩:٣٠ مرحبا") == "١٨:٠٠–١٩:٣٠ مرحبا"


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_meeting_sms_is_gsm7_and_at_most_two_segments(template: str, language: str) -> None:
    rendered = render(template, language)

    assert rendered.sms_encoding == "GSM-7", [char for char in rendered.sms if sms_encoding(char) != "GSM-7"]
    assert rendered.sms_segments <= 2, len(rendered.sms)
    assert rendered.sms_segments == sms_segments(rendered.sms)


@pytest.mark.parametrize("language", LANGUAGES)
def test_invitation_sms_carries_the_real_content(language: str) -> None:
    sms = render("meeting_invitation", language).sms

    assert "Foreldremøte 7B" in sms
    assert "3" in sms
    assert "2026" in sms
    assert "18:00-19:30" in sms
    assert "Rom 204" in sms
    assert "Bjølsen skole" in sms
    assert "logg inn" not in sms.lower()
    assert "log in" not in sms.lower()
    assert sms_segments(sms) <= 2


def test_a_long_agenda_is_shortened_in_the_sms_but_whole_in_the_email() -> None:
    long_agenda = "Klassetur, leksehjelp og nasjonale prøver. " * 20

    rendered = render("meeting_invitation", "nb", meeting=meeting(agenda=long_agenda))

    assert rendered.sms_segments <= 2
    assert "..." in rendered.sms
    assert long_agenda.strip() in rendered.text


def test_an_emoji_in_the_title_is_kept_and_the_sms_becomes_ucs2() -> None:
    rendered = render("meeting_invitation", "nb", meeting=meeting(title="Foreldremøte 7B 🎄"))

    assert "🎄" in rendered.sms
    assert rendered.sms_encoding == "UCS-2"
    assert rendered.sms_segments == sms_segments(rendered.sms)
