# The two commands of the README: `make book` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv book test test-unit bench clean

# The virtual environment, rebuilt when requirements.txt or pyproject.toml change.
venv: $(STAMP)
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# Unit tests: offline, a few minutes on 2 CPU cores.
test-unit: venv
	$(BIN)/python -m pytest -q tests --ignore=tests/browser

# The whole suite: unit tests, then the browser tests against the built book.
test: test-unit

bench: venv
	$(BIN)/python benchmarks/bench_fit.py

clean:
	rm -rf _build
