"""requirements.lock and pyproject.toml agree: every declared requirement is pinned in the lock at a
version its specifier allows, and the lock pins nothing twice (and not kds itself)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in [*project["dependencies"], *(r for group in extras.values() for r in group)]]


def pins() -> dict[str, Version]:
    pinned: dict[str, Version] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", line
        name = canonicalize_name(requirement.name)
        assert name not in pinned, f"{name} is pinned twice"
        pinned[name] = Version(specifier.version)
    return pinned


def disagreements(requirements: list[Requirement], pinned: dict[str, Version]) -> list[str]:
    found = []
    for requirement in requirements:
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            found.append(f"{requirement} (lock: {version})")
    return found


def test_every_requirement_is_pinned_at_an_allowed_version() -> None:
    assert disagreements(declared(), pins()) == [], "regenerate requirements.lock (the command is in its header)"


def test_every_requirement_is_bounded_above() -> None:
    unbounded = [str(r) for r in declared() if not any(s.operator in ("<", "<=", "==") for s in r.specifier)]
    assert unbounded == []


def test_the_lock_does_not_pin_kds_itself() -> None:
    assert "kds" not in pins()


def test_a_pin_outside_the_range_or_a_missing_pin_is_a_disagreement() -> None:
    requirements = [Requirement("pytest>=8.2,<9.2"), Requirement("psycopg[binary]>=3.2,<4"), Requirement("Py_YAML")]
    pinned = {"pytest": Version("9.2.0"), "psycopg": Version("3.3.9")}
    assert disagreements(requirements, pinned) == ["pytest<9.2,>=8.2 (lock: 9.2.0)", "Py_YAML (lock: None)"]


VENV = "python3 -m venv .venv && . .venv/bin/activate && pip install -c requirements.lock"


def test_ci_runs_the_readme_test_command_exactly() -> None:
    readme = (ROOT / "README.md").read_text()
    command = (ROOT / ".ci" / "run").read_text().rstrip().splitlines()[-1]
    assert command == f"{VENV} -e '.[dev,embedded]' && pytest"
    assert f"\n{command}\n" in readme
    assert f"\n{VENV} -e '.[embedded]' && kds incidents list\n" in readme
