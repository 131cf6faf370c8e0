"""Every test of WebAssembly's WASI test suite, on every installed engine, as an OCI
container through runwasm on runc (how each test becomes a bundle, and which tests are
expected to fail where and why: wasi_testsuite.py).

An expected failure is strict: a test that starts passing must leave the table.
"""

from __future__ import annotations

import pytest
from conftest import SuiteRun
from wasi_testsuite import KIT, Case, expected_failure, load_cases

CASES = load_cases()


def _cases() -> list[object]:
    if not CASES:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f"the WASI test suite kit is not at {KIT}"), id="no-kit")]
    return [pytest.param(case, id=case.name) for case in CASES]


@pytest.mark.parametrize("case", _cases())
def test_wasi(suite: SuiteRun, case: Case, request: pytest.FixtureRequest) -> None:
    problems = suite.failures(case)
    report = "\n".join(problems)
    expected = expected_failure(suite.engine.label, case)
    if expected is not None:
        assert not problems or expected.sign in report, (
            f"fails, but not as expected ({expected.sign!r} not shown):\n{report}")
        request.applymarker(pytest.mark.xfail(reason=expected.reason, strict=True))
    assert not problems, report
