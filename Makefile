# `make demo` and `make test` are the two commands in the README; .ci/run calls `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
PY39 ?= $(firstword $(wildcard /root/.pyenv/versions/3.9.*/bin/python3.9))

.PHONY: setup demo test lint test-py39 bench bench-cache bench-wasmedge clean

setup:
	./scripts/setup.sh

demo: setup
	$(PY) -m devkit.demo

lint: setup
	.venv/bin/ruff check runwasm tests devkit bench
	.venv/bin/mypy

# The fast part of the suite (unit tests) under the Python 3.9 floor.
test-py39: setup
	@if [ -z "$(PY39)" ]; then echo "test-py39: no Python 3.9 found, skipped"; else \
	  [ -x .venv39/bin/python ] || $(PY39) -m venv .venv39; \
	  .venv39/bin/python -c "import runwasm, pytest, hypothesis" 2>/dev/null \
	    || .venv39/bin/pip install -q -e '.[test]'; \
	  .venv39/bin/python -m pytest -q tests/unit; fi

test: setup lint test-py39
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/startup.py

# A ~99 MB module, cold and warm through the precompiled-module cache (minutes).
bench-cache: setup
	$(PY) bench/cache.py

# fib(32) on WasmEdge: interpreted vs AOT code from the cache (under a minute).
bench-wasmedge: setup
	$(PY) bench/wasmedge_aot.py

# dist/runwasm_<version>_amd64.deb and dist/runwasm-<version>.x86_64.rpm, built with nfpm
# from packaging/ (packaging/README.md).
.PHONY: packages
packages: setup
	$(PY) packaging/build.py

clean:
	rm -rf .venv .venv39 examples/build
