"""`runwasm --help` / `-h` / `help`: runwasm's own usage first, then runc's help."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from runwasm.annotations import FEATURES
from runwasm.cli import VERBS
from runwasm.limits import INVOKE

pytestmark = pytest.mark.skipif(shutil.which("runc") is None,
                                reason="runc is not installed (its help follows runwasm's)")
ENTRY = "from runwasm.handler.main import main; main()"


def runwasm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", ENTRY, *args], capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["help"], [], ["--root", "/x", "--help"]])
def test_usage_first_then_runc(args: list[str]) -> None:
    result = runwasm(*args)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("runwasm ")
    ours, sep, theirs = out.partition("runc's own help follows")
    assert sep, out
    for verb in VERBS:
        assert f"runwasm {verb}" in ours
    for key in (*FEATURES, INVOKE):
        assert key in ours
    assert "man runwasm" in ours
    assert "NAME:" not in ours  # runc's help starts only after the marker
    assert "NAME:" in theirs and "runc" in theirs


def test_help_for_a_runc_verb_is_runcs() -> None:
    result = runwasm("help", "create")
    assert result.returncode == 0
    assert result.stdout.lstrip().startswith("NAME:")
    assert "runc create" in result.stdout


def test_help_for_an_admin_verb_is_its_own() -> None:
    result = runwasm("help", "doctor")
    assert result.returncode == 0
    assert "Usage: runwasm doctor" in result.stdout
