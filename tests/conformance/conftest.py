"""The WASI test suite's fixtures: one run of the selected tests per engine, shared by
that engine's test items."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The engine matrix and the runc helpers are the integration suite's.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

from engine_matrix import Engine, engine_params  # noqa: E402
from integration_support import Runtime  # noqa: E402
from wasi_testsuite import Case, run_cases  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    for item in items:
        if "conformance" in str(item.fspath):
            item.add_marker(pytest.mark.skip(reason="the WASI suite runs containers: needs root"))


class SuiteRun:
    """One engine's results, computed for all of its selected tests at the first request
    (so they can run side by side)."""

    def __init__(self, engine: Engine, param: Any, session: pytest.Session) -> None:
        self.engine = engine
        self.param = param
        self.session = session
        self.results: dict[str, list[str]] | None = None
        self.error = ""  # why the run itself failed: every test of the engine reports it

    def failures(self, case: Case) -> list[str]:
        if self.results is None and not self.error:
            selected = [item.callspec.params["case"] for item in self.session.items
                        if _params(item).get("suite") == self.param]
            try:
                self.results = run_cases(self.engine, selected, self.engine.tmp / "cases")
            except Exception as e:  # e.g. a bundle that cannot be built
                self.error = f"the suite did not run on {self.engine.label}: {e!r}"
        if self.results is None:
            pytest.fail(self.error)
        return self.results[case.name]


def _params(item: pytest.Item) -> dict[str, Any]:
    callspec = getattr(item, "callspec", None)
    return callspec.params if callspec is not None else {}


@pytest.fixture(scope="session", params=engine_params())
def suite(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[SuiteRun]:
    label, name, tables = request.param
    tmp = tmp_path_factory.mktemp(f"wasi-{label}")
    root = Path("/run/runwasm-tests") / uuid.uuid4().hex[:8]
    root.mkdir(parents=True)
    runtime = Runtime(root)
    try:
        yield SuiteRun(Engine(label, name, tables, runtime, tmp, cache_dir=tmp / "cache"),
                       request.param, request.session)
    finally:
        runtime.cleanup()
        shutil.rmtree(root, ignore_errors=True)
