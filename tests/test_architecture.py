"""The layering rules: services import only the shared package, and the shared package imports no service."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVICE_PACKAGES = {path.name: path for path in REPO.glob("services/*/src/notify_*")}


def _imported_modules(source: Path) -> Iterator[str]:
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _python_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*.py") if ".venv" not in path.parts]


def test_every_service_is_checked() -> None:
    assert {"notify_invitations", "notify_reminders", "notify_digest", "notify_ingest"} <= set(SERVICE_PACKAGES)


@pytest.mark.parametrize("package", sorted(SERVICE_PACKAGES))
def test_a_service_never_imports_another_service(package: str) -> None:
    service_root = SERVICE_PACKAGES[package].parents[1]
    others = set(SERVICE_PACKAGES) - {package}
    offending = [
        f"{path.relative_to(REPO)} imports {module}"
        for path in _python_files(service_root)
        for module in _imported_modules(path)
        if module.split(".")[0] in others
    ]
    assert not offending, "services talk only through Kafka topics:\n" + "\n".join(offending)


def test_the_shared_package_imports_no_service() -> None:
    offending = [
        f"{path.relative_to(REPO)} imports {module}"
        for path in _python_files(REPO / "shared")
        for module in _imported_modules(path)
        if module.split(".")[0] in SERVICE_PACKAGES
    ]
    assert not offending, "\n".join(offending)


def test_the_examples_use_only_the_shared_package() -> None:
    # An example shows an admin system's side: it may borrow the shared samples and contract, never a service.
    offending = [
        f"{path.relative_to(REPO)} imports {module}"
        for path in _python_files(REPO / "examples")
        for module in _imported_modules(path)
        if module.split(".")[0] in SERVICE_PACKAGES
    ]
    assert not offending, "\n".join(offending)
