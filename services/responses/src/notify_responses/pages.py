"""The answer page's HTML, rendered in the guardian's language from the shared templates and catalogs
(`notify_shared/templates/_answer_*.html`), like the emails."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from notify_responses.service import AnswerForm, FormProblem, LinkState
from notify_responses.store import InvitationState, StoredAnswer
from notify_shared.rendering.environment import environment_for
from notify_shared.rendering.formatting import babel_locale
from notify_shared.rendering.languages import DEFAULT_LANGUAGE, available_languages, direction_of

STYLESHEET = "/static/answer.css"

# Babel names Dari by its standard, Persian as written in Afghanistan; Afghan parents call it Dari.
_AUTONYM_CORRECTIONS = {"prs": "دری"}


@dataclass(frozen=True)
class _School:
    """What the date functions of the template environment need from `school`: its time zone."""

    timezone: str


@cache
def interpreter_languages() -> tuple[tuple[str, str], ...]:
    """Every language the platform writes in, each named in itself, in order of that name."""
    named = []
    for code in available_languages():
        autonym = _AUTONYM_CORRECTIONS.get(code) or babel_locale(code).get_display_name(babel_locale(code)) or code
        named.append((code, autonym))
    return tuple(sorted(named, key=lambda item: item[1].casefold()))


def language_name(code: str) -> str:
    """The language's name in itself (for the confirmation), or the code when it has no catalog."""
    return dict(interpreter_languages()).get(code, code)


def _common(language: str, state: InvitationState | None) -> dict[str, Any]:
    meeting = state.meeting if state is not None else None
    return {
        "lang": language,
        "direction": direction_of(language),
        "stylesheet": STYLESHEET,
        "school_name": meeting.school_name if meeting is not None else None,
        "school": _School(meeting.timezone if meeting is not None else "Europe/Oslo"),
        "meeting": meeting,
        "has_errors": False,
    }


def form_page(
    language: str, state: InvitationState, *, proof: str, form: AnswerForm | None = None, forgery: bool = False
) -> str:
    """The question: the meeting, the three answers, interpreter and comment; the parent's input kept on errors."""
    shown = form or _form_from(state.answer, default_language=state.invitation.language)
    problems = set(form.problems if form is not None else ())
    errors = {problem.value: problem in problems for problem in FormProblem} | {"forgery": forgery}
    context = _common(language, state) | {
        "has_errors": any(errors.values()),
        "errors": errors,
        "form": {
            "answer": shown.answer.value if shown.answer is not None else None,
            "needs_interpreter": shown.needs_interpreter,
            "interpreter_language": shown.interpreter_language or _catalog_or_first(state.invitation.language),
            "comment": shown.comment,
        },
        "languages": interpreter_languages(),
        "proof": proof,
    }
    return environment_for(language).get_template("_answer_form.html").render(context)


def confirmation_page(language: str, state: InvitationState) -> str:
    """What was recorded, and how to change it."""
    answer = state.answer
    assert answer is not None, "a confirmation is shown only for a recorded answer"
    context = _common(language, state) | {
        "answer": {"answer": answer.answer.value, "comment": answer.comment},
        "interpreter_language_name": language_name(answer.interpreter_language)
        if answer.interpreter_language
        else None,
    }
    return environment_for(language).get_template("_answer_confirmation.html").render(context)


def problem_page(language: str, problem: LinkState | str, state: InvitationState | None = None) -> str:
    """A link that leads nowhere (invalid, started, cancelled) or too many attempts. An invalid link's page
    names no school, so it tells nothing about what the link might have been for."""
    shown_state = state if problem in (LinkState.STARTED, LinkState.CANCELLED) else None
    context = _common(language, shown_state) | {"problem": str(problem)}
    return environment_for(language).get_template("_answer_problem.html").render(context)


def _form_from(answer: StoredAnswer | None, *, default_language: str) -> AnswerForm:
    if answer is None:
        return AnswerForm(None, needs_interpreter=False, interpreter_language=None, comment=None)
    return AnswerForm(
        answer.answer,
        needs_interpreter=answer.interpreter_language is not None,
        interpreter_language=answer.interpreter_language or default_language,
        comment=answer.comment,
    )


def _catalog_or_first(language: str) -> str:
    codes = [code for code, _ in interpreter_languages()]
    primary = language.split("-", 1)[0]
    return language if language in codes else primary if primary in codes else DEFAULT_LANGUAGE
