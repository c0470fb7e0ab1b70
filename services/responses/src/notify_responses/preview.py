"""Screenshots of the answer page as parents see it on a phone, taken by Debian's Chromium through Playwright:
`uv run python -m notify_responses.preview [lang …]` (scripts/answer-page-screenshots) writes
docs/screenshots/answer-<lang>.png (the question), answer-<lang>-confirmation.png and answer-nb-error.png.

The pages are rendered from the sample meeting exactly as the service renders them; only the stylesheet is put
inline, since the page is shown without the service that serves /static/answer.css.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from datetime import UTC
from importlib.resources import files
from pathlib import Path

from playwright.async_api import ViewportSize, async_playwright

from notify_responses import pages
from notify_responses.service import AnswerForm, FormProblem
from notify_responses.store import GuardianInvitation, InvitationState, MeetingRow, StoredAnswer
from notify_shared import samples
from notify_shared.contract import AnswerChannel, Rsvp

OUT = Path("docs/screenshots")
PHONE: ViewportSize = {"width": 390, "height": 844}
"""A common phone's viewport, in CSS pixels."""


def _state(language: str, answer: StoredAnswer | None = None) -> InvitationState:
    school, meeting = samples.sample_school(), samples.sample_meeting()
    return InvitationState(
        invitation=GuardianInvitation("0" * 18, school.id, meeting.meeting_id, "g-1001", language, None),
        meeting=MeetingRow(
            school_id=school.id,
            meeting_id=meeting.meeting_id,
            school_name=school.name,
            title=meeting.title,
            starts_at=meeting.starts_at.astimezone(UTC),
            ends_at=meeting.ends_at.astimezone(UTC),
            location=meeting.location,
            timezone=school.timezone,
            written_standard=school.written_standard,
            cancelled=False,
        ),
        invited=True,
        answer=answer,
    )


def _inline(html: str) -> str:
    css = files("notify_responses").joinpath("static", "answer.css").read_text(encoding="utf-8")
    return html.replace(f'<link rel="stylesheet" href="{pages.STYLESHEET}">', f"<style>{css}</style>")


def _pictures(language: str) -> dict[str, str]:
    answered = StoredAnswer(Rsvp.ACCEPTED, language, None, AnswerChannel.WEB, samples.SAMPLE_NOW)
    shots = {
        f"answer-{language}.png": pages.form_page(language, _state(language), proof="preview"),
        f"answer-{language}-confirmation.png": pages.confirmation_page(language, _state(language, answered)),
    }
    if language == "nb":
        missing = AnswerForm(None, False, None, "Vi kommer kanskje litt sent.", (FormProblem.NO_ANSWER,))
        shots["answer-nb-error.png"] = pages.form_page("nb", _state("nb"), proof="preview", form=missing)
    return shots


async def take(languages: list[str]) -> list[Path]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs Debian's chromium: apt-get install chromium fonts-noto-core")
    written = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport=PHONE, device_scale_factor=1)
            for language in languages:
                for name, html in _pictures(language).items():
                    await page.set_content(_inline(html))
                    path = OUT / name
                    await page.screenshot(path=str(path), full_page=True)
                    written.append(path)
        finally:
            await browser.close()
    return written


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(take(sys.argv[1:] or ["nb", "pl", "ar", "uk"])):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
