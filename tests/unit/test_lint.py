"""The code is held to its own style rules in every test run, not only by hand.

ruff (lint and format) and mypy (strict, per pyproject.toml) run from the
same environment as the tests, so CI fails on a lint or type error as it
would on a failing test.
"""

from __future__ import annotations

import subprocess
import sys
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
    ],
)
def test_tool_is_clean(command: list[str]) -> None:
    result = _run(str(BIN / command[0]), *command[1:])
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"
