"""Hypothesis profiles of the test suite, loaded as a pytest plugin by the root conftest.py.

In CI (`CI=true`) every run tries the same examples (derandomized: the seed comes from the test itself), so a
failure there fails again on a laptop with `CI=true`, and the report prints a `@reproduce_failure` blob that
replays the exact failing example. Locally the runs stay random, to keep finding new cases, and print the blob
too. `HYPOTHESIS_PROFILE` picks a profile by name and wins over both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, settings

CI_PROFILE = "notify-ci"
LOCAL_PROFILE = "notify-local"


def register_profiles() -> None:
    # No deadline in CI: two cores shared by many jobs make any per-example time limit flaky.
    settings.register_profile(
        CI_PROFILE, derandomize=True, print_blob=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.register_profile(LOCAL_PROFILE, print_blob=True)


def profile_for(environ: Mapping[str, str]) -> str:
    """The profile a run with this environment uses."""
    chosen = environ.get("HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    return CI_PROFILE if environ.get("CI", "").strip().lower() in ("true", "1", "yes") else LOCAL_PROFILE


def pytest_configure(config: pytest.Config) -> None:
    register_profiles()
    settings.load_profile(profile_for(os.environ))
