"""requirements.txt must not drift from pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[2]


def test_requirements_txt_pins_exactly_the_pyproject_dependencies() -> None:
    project = tomllib.loads((BACKEND / "pyproject.toml").read_text())["project"]
    lines = (BACKEND / "requirements.txt").read_text().splitlines()
    requirements = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert sorted(requirements) == sorted(project["dependencies"])


def test_every_runtime_dependency_is_pinned() -> None:
    project = tomllib.loads((BACKEND / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["dev"]
    assert all("==" in dep for dep in deps), [d for d in deps if "==" not in d]
