# Quick start: `make demo` and `make test` on a fresh machine (each creates .venv if missing).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# numba caches compiled kernels here, so only the first run pays for compilation.
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache

.PHONY: demo test bench doctor install-service clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# One stamp per set of extras, remade whenever pyproject.toml changes.
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[$*]'
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/python -m skinretouch.demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-test
	$(BIN)/python -m skinretouch.benchmark --out bench/results

doctor: $(VENV)/.installed-demo
	$(BIN)/skinretouch doctor

install-service:
	sh systemd/install.sh

clean:
	rm -rf $(VENV) .numba_cache demo-output bench/results .pytest_cache
