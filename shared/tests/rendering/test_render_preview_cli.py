"""`notify preview`: every part of a notification with sample data, as files a person can open."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from notify_shared.cli import app
from notify_shared.rendering import sms_segments, template_names

runner = CliRunner()


def test_preview_writes_subject_text_html_and_sms_and_prints_where(tmp_path: Path) -> None:
    out = tmp_path / "preview"

    result = runner.invoke(app, ["preview", "meeting_invitation", "--lang", "nb", "--out", str(out)])

    assert result.exit_code == 0, result.output
    printed = result.stdout.splitlines()
    assert printed == [
        str(out / "subject.txt"),
        str(out / "body.txt"),
        str(out / "body.html"),
        str(out / "sms.txt"),
        (out / "body.html").resolve().as_uri(),
    ]
    assert printed[-1].startswith("file:///")
    assert (out / "subject.txt").read_text(encoding="utf-8") == (
        "Invitasjon: Foreldremøte 7B, torsdag 3. desember 2026 kl. 18:00\n"
    )
    assert (out / "body.txt").read_text(encoding="utf-8").startswith("Hei Kari Nordmann,\n")
    assert (out / "body.html").read_text(encoding="utf-8").startswith('<!DOCTYPE html>\n<html lang="nb" dir="ltr">')
    cost, sms = (out / "sms.txt").read_text(encoding="utf-8").split("\n", 1)
    assert cost == f"GSM-7, {sms_segments(sms.rstrip(chr(10)))} segment(s)"
    assert "Rom 204, Bjølsen skole" in sms


def test_preview_goes_to_the_local_preview_folder_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    result = runner.invoke(app, ["preview", "absence_notice", "--lang", "ar"])

    assert result.exit_code == 0, result.output
    folder = tmp_path / ".local" / "preview" / "absence_notice-ar"
    assert sorted(path.name for path in folder.iterdir()) == ["body.html", "body.txt", "sms.txt", "subject.txt"]
    assert '<html lang="ar" dir="rtl">' in (folder / "body.html").read_text(encoding="utf-8")
    assert (folder / "sms.txt").read_text(encoding="utf-8").startswith("UCS-2, ")


@pytest.mark.parametrize("template", sorted(template_names()))
def test_every_template_can_be_previewed(template: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["preview", template, "--lang", "nn", "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "body.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_a_language_without_a_catalog_stops_instead_of_showing_bokmal(tmp_path: Path) -> None:
    result = runner.invoke(app, ["preview", "meeting_invitation", "--lang", "fr", "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "no catalog for 'fr'" in result.stderr
    assert not list(tmp_path.iterdir())


def test_fallback_previews_what_a_guardian_without_a_catalog_gets(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "preview",
            "meeting_invitation",
            "--lang",
            "fr",
            "--school-standard",
            "nn",
            "--fallback",
            "--out",
            str(tmp_path),
        ],
    )

    assert result.exit_code == 0, result.output
    assert '<html lang="nn" dir="ltr">' in (tmp_path / "body.html").read_text(encoding="utf-8")


def test_an_unknown_template_is_refused() -> None:
    result = runner.invoke(app, ["preview", "meeting_invitatoin", "--lang", "nb"])

    assert result.exit_code != 0
    assert "meeting_invitation" in result.output
