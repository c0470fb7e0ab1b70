"""What the language review of issue 19 changed in the catalogs, as the parents read it (see docs/glossary)."""

from __future__ import annotations

from notify_shared.rendering import RenderedNotification, render_notification
from notify_shared.rendering.environment import translations_for
from notify_shared.rendering.previews import sample_context


def _render(template: str, language: str) -> RenderedNotification:
    return render_notification(template, language, "nb", sample_context(template, language))


def _counted(language: str, singular: str, plural: str, count: int) -> str:
    return translations_for(language).ngettext(singular, plural, count) % {"count": count}


def test_arabic_greets_a_mother_or_a_father_alike_and_the_dual_has_no_digit() -> None:
    invitation = _render("meeting_invitation", "ar")

    assert invitation.text.startswith("مرحبًا")
    assert "الكريم" not in invitation.text
    assert "الموعد:" in invitation.sms
    assert _counted("ar", "%(count)s message", "%(count)s messages", 2) == "رسالتان"
    assert _counted("ar", "%(count)s absence", "%(count)s absences", 2) == "حالتا غياب"
    assert _counted("ar", "%(count)s message", "%(count)s messages", 3) == "3 رسائل"


def test_ukrainian_counts_absences_not_days() -> None:
    assert _counted("uk", "%(count)s absence", "%(count)s absences", 1) == "1 пропуск"
    assert _counted("uk", "%(count)s absence", "%(count)s absences", 3) == "3 пропуски"
    assert _counted("uk", "%(count)s absence", "%(count)s absences", 5) == "5 пропусків"


def test_polish_asks_kindly_to_hear_from_a_parent_who_cannot_come() -> None:
    invitation = _render("meeting_invitation", "pl")

    assert "Jeśli nie uda się przyjść, prosimy dać znać szkole." in invitation.text
    assert "Do zobaczenia!" in invitation.text
    assert "Nieobecność prosimy" not in invitation.text


def test_norwegian_lesson_absence_says_which_lessons_from_its_first_words() -> None:
    assert (
        _render("absence_notice", "nb")
        .sms.split("\n")[1]
        .startswith("Emma (7B) var ikke til stede i disse timene i dag")
    )
    assert (
        _render("absence_notice", "nn")
        .sms.split("\n")[1]
        .startswith("Emma (7B) var ikkje til stades i desse timane i dag")
    )


def test_german_labels_the_meeting_and_counts_lessons_not_hours() -> None:
    assert "Treffen: " in _render("meeting_invitation", "de").text
    assert "Neuer Termin: " in _render("meeting_update", "de").text
    assert "Unterrichtsstunden" in _render("absence_notice", "de").text


def test_turkish_labels_the_date_and_regrets_a_cancellation() -> None:
    assert "Tarih: " in _render("meeting_invitation", "tr").sms
    assert "Maalesef" in _render("meeting_cancellation", "tr").text


def test_somali_signs_off_in_a_way_that_fits_an_absence_notice() -> None:
    absence = _render("absence_notice", "so")

    assert absence.sms.endswith("Salaan diiran, Bjølsen skole")
    assert "Mahadsanid" not in absence.text
    assert "Markii hore:" in _render("meeting_update", "so").text
