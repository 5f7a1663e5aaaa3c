"""The code is held to its own style rules in every test run, not only by hand.

ruff (lint and format), mypy (strict, per pyproject.toml) and import-linter
(the floors of the package: no import runs upward, the pure floors never
reach kopf or the API) run from the same environment as the tests, so CI
fails on a lint, type or layering error as it would on a failing test.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TREES = ["operator", "tests", "bench", "hack"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["ruff", "check", *TREES], id="ruff-check"),
        pytest.param(["ruff", "format", "--check", *TREES], id="ruff-format"),
        pytest.param(["mypy"], id="mypy"),
        pytest.param(["lint-imports", "--no-cache"], id="import-linter"),
    ],
)
def test_tool_is_clean(command: list[str]) -> None:
    result = _run(str(BIN / command[0]), *command[1:])
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"


def test_every_module_of_the_package_sits_on_a_floor() -> None:
    """A new top-level module or package left out of the floors would be unchecked."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    floors = next(c for c in config["contracts"] if c["id"] == "floors")
    placed = {
        name.strip() for layer in floors["layers"] for name in layer.replace(":", "|").split("|")
    }
    package = ROOT / "operator" / "jobwarden"
    present = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    present |= {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    assert present == placed, f"not on a floor: {present - placed}; gone: {placed - present}"
