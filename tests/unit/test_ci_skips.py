"""In CI a skipped test fails the run, and so does a run in which no test ran.

Each case runs pytest in a scratch directory with the hook of
``tests/support/ci_skips.py`` loaded, as ``tests/conftest.py`` loads it, and
reads the exit code and summary a CI service would see. The last cases run
``.ci/run`` itself with a stand-in pytest, so that the way from pytest's exit
code through ``make test`` to CI's verdict is the real one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TESTS = """
import pytest

def test_passes():
    pass

def test_needs_helm():
    pytest.skip("helm is not installed")

@pytest.mark.skipif(True, reason="no control plane")
def test_marked():
    pass

@pytest.mark.xfail(reason="known bug", strict=True)
def test_known_bug():
    raise AssertionError
"""


def run_pytest(directory: Path, *, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(ROOT)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.support.ci_skips", "-q", "-rA",
         "-p", "no:cacheprovider", str(directory)],
        capture_output=True, text=True, env=env, cwd=directory, timeout=120,
    )  # fmt: skip


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "test_sample.py").write_text(TESTS)
    return tmp_path


def test_in_ci_every_skip_fails_naming_its_reason(suite: Path) -> None:
    out = run_pytest(suite, ci="true")
    assert out.returncode == 1, out.stdout
    # A skip in the call fails the test; a skip at setup (a skipif mark) errors it.
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in out.stdout, out.stdout
    assert "skipped in CI (CI=true), which counts as a failure: helm is not installed" in out.stdout
    assert "which counts as a failure: no control plane" in out.stdout


def test_outside_ci_a_skip_is_only_a_skip(suite: Path) -> None:
    for ci in (None, "false"):
        out = run_pytest(suite, ci=ci)
        assert out.returncode == 0, out.stdout
        assert "1 passed, 2 skipped, 1 xfailed" in out.stdout, out.stdout


def test_a_run_without_tests_is_not_a_pass(tmp_path: Path) -> None:
    (tmp_path / "test_empty.py").write_text("")
    out = run_pytest(tmp_path, ci="true")
    assert out.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, out.stdout


def fake_ci(tmp_path: Path, *, pytest_exit: int) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``.ci/run`` with ``make test`` reaching a stand-in pytest that exits ``pytest_exit``.

    Variables given in MAKEFLAGS count as make command-line variables: the
    virtualenv and the cluster script become stand-ins, the recipe stays real.
    """
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    seen = tmp_path / "seen"
    stand_in = venv / "bin" / "pytest"
    stand_in.write_text(f'#!/bin/sh\necho "CI=$CI args=$*" > {seen}\nexit {pytest_exit}\n')
    stand_in.chmod(0o755)
    (venv / ".installed").touch()  # newer than pyproject.toml: no install
    cluster = tmp_path / "cluster.sh"
    cluster.write_text("exit 0\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "MAKEFLAGS", "MAKELEVEL")}
    env["MAKEFLAGS"] = f"VENV={venv} CLUSTER={cluster}"
    out = subprocess.run(
        ["bash", str(ROOT / ".ci" / "run")], capture_output=True, text=True, env=env, timeout=60
    )
    return out, seen


@pytest.mark.parametrize(
    ("pytest_exit", "passes"),
    [(0, True), (1, False), (5, False)],
    ids=["all-passed", "failed", "no-tests"],
)
def test_ci_entry_point_fails_unless_pytest_passed(
    tmp_path: Path, pytest_exit: int, passes: bool
) -> None:
    out, seen = fake_ci(tmp_path, pytest_exit=pytest_exit)
    assert seen.exists(), f"the stand-in pytest did not run: {out.stderr}"
    assert (out.returncode == 0) is passes, (out.returncode, out.stderr)
    # CI=true reached pytest, so the skip hook is armed in CI.
    assert seen.read_text().startswith("CI=true "), seen.read_text()
