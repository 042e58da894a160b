"""Binder and conda: environment.yml installs what pyproject.toml asks for, at the versions constraints.txt pins."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _pip_lines() -> list[str]:
    sections = [entry["pip"] for entry in _environment()["dependencies"] if isinstance(entry, dict) and "pip" in entry]
    assert len(sections) == 1, "environment.yml should have one pip section"
    return sections[0]


def _pip_requirements() -> dict[str, Requirement]:
    requirements = [Requirement(line) for line in _pip_lines() if not line.startswith("-")]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def _constraints() -> dict[str, Requirement]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    requirements = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def test_environment_yml_installs_the_package_dependencies_and_the_lab_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["lab"]]
    assert set(_pip_requirements()) == {canonicalize_name(Requirement(line).name) for line in wanted}


def test_torch_is_pinned_exactly_as_constraints_txt_pins_it():
    pinned = _pip_requirements()["torch"].specifier
    assert str(pinned).startswith("=="), f"environment.yml should pin torch exactly, not {pinned}"
    assert pinned == _constraints()["torch"].specifier


def test_every_other_package_gets_its_version_from_constraints_txt():
    assert "-c constraints.txt" in _pip_lines()
    assert set(_pip_requirements()) <= set(_constraints())


def test_conda_python_is_the_one_constraints_txt_was_locked_on():
    conda = [entry for entry in _environment()["dependencies"] if isinstance(entry, str)]
    assert "pip" in conda  # repo2docker and conda need it for the pip section
    python = next(entry for entry in conda if entry.startswith("python"))
    locked = set(re.findall(r'python_version == "([\d.]+)"', (ROOT / "constraints.txt").read_text()))
    assert python == f"python={locked.pop()}" and not locked


def test_binder_installs_epochviz_itself_after_the_environment():
    post_build = ROOT / "postBuild"
    assert os.access(post_build, os.X_OK), "repo2docker runs postBuild only when it is executable"
    assert re.search(r"^pip install --no-deps -e \.$", post_build.read_text(), re.MULTILINE)
