"""A property-based test that fails in CI can be replayed: CI runs are derandomized and print the failing example's
blob, while local runs stay random."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from notify_shared.testing.hypothesis_profiles import CI_PROFILE, LOCAL_PROFILE, profile_for

# Writes down every example Hypothesis tries, and fails on large ones so that shrinking and reporting happen too.
PROPERTY = """
import os
from hypothesis import given, strategies as st

@given(st.integers(min_value=0, max_value=10**9))
def test_numbers_stay_small(number):
    with open(os.environ["TRIED"], "a") as tried:
        tried.write(f"{number}\\n")
    assert number < 1000
"""


def run_property(tmp_path: Path, name: str, **environ: str) -> tuple[str, list[str]]:
    """Run PROPERTY in a pytest of its own with the suite's Hypothesis plugin; its output and the examples tried."""
    (tmp_path / "test_property.py").write_text(PROPERTY, encoding="utf-8")
    tried = tmp_path / f"{name}.tried"
    clean = {key: value for key, value in os.environ.items() if key not in ("CI", "HYPOTHESIS_PROFILE")}
    plugin = "notify_shared.testing.hypothesis_profiles"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", plugin, "-p", "no:cacheprovider", "-q", "test_property.py"],
        cwd=tmp_path,
        env={**clean, **environ, "TRIED": str(tried)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout[-2000:]  # the property fails, as written
    return done.stdout, tried.read_text(encoding="utf-8").splitlines()


def test_ci_is_told_apart_by_the_ci_variable_and_an_explicit_profile_wins() -> None:
    assert profile_for({"CI": "true"}) == CI_PROFILE
    assert profile_for({}) == LOCAL_PROFILE
    assert profile_for({"CI": "false"}) == LOCAL_PROFILE
    assert profile_for({"CI": "true", "HYPOTHESIS_PROFILE": LOCAL_PROFILE}) == LOCAL_PROFILE


def test_two_ci_runs_try_the_same_examples_and_print_how_to_replay_the_failure(tmp_path: Path) -> None:
    first_output, first = run_property(tmp_path, "first", CI="true")
    _, second = run_property(tmp_path, "second", CI="true")
    assert first == second
    assert "number=1000" in first_output  # the smallest failing example, shrunk
    assert "@reproduce_failure(" in first_output


def test_local_runs_stay_random_and_still_print_the_blob(tmp_path: Path) -> None:
    first_output, first = run_property(tmp_path, "first")
    _, second = run_property(tmp_path, "second")
    assert first != second
    assert "@reproduce_failure(" in first_output
