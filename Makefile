# The two commands of the README: `make book` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: need-npm need-browser venv book assets students slides pdf test-slides test-browser test-colab test-instructor strip test test-unit bench clean

# The virtual environment, rebuilt when requirements.txt or pyproject.toml change.
venv: $(STAMP)
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# Prerequisites checked before anything is installed, so that a missing one stops the build at once, in one line.
need-npm:
	@command -v npm >/dev/null || { echo "make book needs Node.js and npm, to fetch the book's browser assets: install them (Debian/Ubuntu: sudo apt-get install nodejs npm; macOS: brew install node; or https://nodejs.org)" >&2; exit 1; }

# (The venv's Python when it exists, so that Playwright's own Chromium counts too; else the system's.)
need-browser:
	@$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) tools/find_browser.py >/dev/null

# --- The book -------------------------------------------------------------------------------------------------
# Browser assets the built book serves itself (no CDN): `npm ci` from package-lock.json into node_modules/ (npm
# writes node_modules/.package-lock.json, the stamp), then book/copy_assets.py fills _book_static/vendor/.
node_modules/.package-lock.json: package.json package-lock.json | need-npm
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

assets: venv node_modules/.package-lock.json
	$(BIN)/python book/copy_assets.py

# Strict build: warnings are errors, a failing cell fails the build; jupyter-cache re-runs only changed notebooks.
# jupyter-cache keys on the notebooks' contents only, so book/cache_guard.py first clears the execution cache when
# vaelib (its Python or its widgets' JavaScript, which the executed pages embed) differs from what the cache was made
# with; the digest it compares lives inside the cache folder, so a restored CI cache keeps its executions.
# --all re-renders every page (cheap: executions come from the cache) so that changed static files are copied too.
book: need-npm venv assets
	$(BIN)/python book/cache_guard.py
	$(BIN)/jupyter-book build -W -n --keep-going --all .

# The students' edition, without solutions, into _build/students/_build/html (reuses the execution cache).
students: venv assets
	$(BIN)/python book/students.py

# Lecture slides (run `make book` first): a reveal.js deck per chapter into _build/slides/, from the chapter notebooks'
# slideshow metadata and the execution cache that `make book` fills (no chapter runs again; a chapter whose code
# changed since is an error). Not part of `make book`.
# reveal.js, MathJax and the widget manager come from node_modules (npm ci), served by the decks themselves.
slides: venv node_modules/.package-lock.json
	$(BIN)/python book/slides.py

# The printable edition (run `make book` first): every page of the built book printed by Chromium into one PDF,
# _build/pdf/book.pdf. Not part of `make book`.
pdf: need-browser venv
	$(BIN)/python book/pdf.py

# The decks in Chromium (offline, no console errors, 10-30 slides, maths typeset) and the PDF (pages, contents,
# titles). Builds the book (from its cache), then the decks and the PDF from it.
test-slides: need-browser book
	$(MAKE) --no-print-directory slides pdf
	$(BIN)/python -m pytest -q tests/slides

# Chromium (Debian's package) against the built book.
test-browser: book
	$(BIN)/python -m pytest -q tests/browser

# Clear outputs and execution counts of the chapter notebooks before committing.
strip: venv
	$(BIN)/python -m tools.strip_notebooks

# Unit tests: offline, a few minutes on 2 CPU cores.
test-unit: venv
	$(BIN)/python -m pytest -q tests --ignore=tests/browser --ignore=tests/slides

# A student's Colab session replayed: every chapter, quick configuration, in an environment holding only what Colab
# preinstalls (.venv-colab, built once from tests/colab/preinstalled.txt) plus vaelib installed as the setup cell does.
# Needs the offline data in $$VAELIB_DATA (see the README).
test-colab: venv
	$(BIN)/python tests/colab/replay.py

# An instructor's edits replayed (tests/instructor/edits.py): every chapter run after switching DATASET to
# Fashion-MNIST, again with every quick epoch count set to 1, and as the students' edition has it (solutions removed).
# Needs the offline data in $$VAELIB_DATA (see the README).
test-instructor: venv
	$(BIN)/python tests/instructor/edits.py

# The whole suite: unit tests, the browser tests against the built book, the slides and PDF, then the replays of a
# student's Colab session and of an instructor's edits.
test: need-npm need-browser test-unit test-browser test-slides test-colab test-instructor

bench: venv
	$(BIN)/python benchmarks/bench_fit.py

clean:
	rm -rf _build
