# The two commands of the README: `make book` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv book assets students test-browser strip test test-unit bench clean

# The virtual environment, rebuilt when requirements.txt or pyproject.toml change.
venv: $(STAMP)
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# --- The book -------------------------------------------------------------------------------------------------
# Browser assets the built book serves itself (no CDN): `npm ci` from package-lock.json into node_modules/ (npm
# writes node_modules/.package-lock.json, the stamp), then book/copy_assets.py fills _book_static/vendor/.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

assets: venv node_modules/.package-lock.json
	$(BIN)/python book/copy_assets.py

# jupyter-cache keys on the notebooks' contents only, so a change to vaelib (its Python or its widgets' JavaScript,
# which the executed pages embed) clears the execution cache and every chapter runs again.
_build/.vaelib-sources: $(wildcard vaelib/*.py vaelib/js/*.js)
	rm -rf _build/.jupyter_cache
	mkdir -p _build && touch $@

# Strict build: warnings are errors, a failing cell fails the build; jupyter-cache re-runs only changed notebooks.
# --all re-renders every page (cheap: executions come from the cache) so that changed static files are copied too.
book: venv assets _build/.vaelib-sources
	$(BIN)/jupyter-book build -W -n --keep-going --all .

# The students' edition, without solutions, into _build/students/_build/html (reuses the execution cache).
students: venv assets
	$(BIN)/python book/students.py

# Chromium (Debian's package) against the built book.
test-browser: book
	$(BIN)/python -m pytest -q tests/browser

# Clear outputs and execution counts of the chapter notebooks before committing.
strip: venv
	$(BIN)/python -m tools.strip_notebooks

# Unit tests: offline, a few minutes on 2 CPU cores.
test-unit: venv
	$(BIN)/python -m pytest -q tests --ignore=tests/browser

# The whole suite: unit tests, then the browser tests against the built book.
test: test-unit test-browser

bench: venv
	$(BIN)/python benchmarks/bench_fit.py

clean:
	rm -rf _build
