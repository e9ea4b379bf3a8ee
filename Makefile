# Two commands do all the set-up: `make run` (the notebook chain, default profile) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# Fashion-MNIST, and every Debian package that a font of the pinned glyph list comes from
FONT_LIST := helpers/data_files/glyph_fonts.csv
# and the headless browser the book's test reads every page with
DEB_PACKAGES := dataset-fashion-mnist $(shell tail -n +2 $(FONT_LIST) | cut -d, -f2 | sort -u) chromium chromium-driver
PROFILE ?= default

.PHONY: setup system run smoke test check report lab bench clean controls book

setup: $(VENV)/.installed $(VENV)/.system

# uv installs the same pinned set as pip in about 40 s instead of about 280 s on 2 cores (it unpacks in parallel and links
# from its cache); it does not read pip's configuration, so pip's configured indexes and wheel folders are passed on.
# Where uv cannot be installed or fails, pip does the install as before. --compile-bytecode: uv writes no .pyc files by
# default (pip does), and where PYTHONDONTWRITEBYTECODE is set (it is on the CI machine) Python never writes them either,
# so every process compiled torch, litert-torch and the rest from source again: 20 s to import the chain's libraries
# instead of 8 s, in each of the suite's dozens of processes (kernels, CLI runs, workers); compiling once costs about 30 s.
UV_VERSION := 0.13.9
PIP_INDEXES := $(shell $(PYTHON) -m pip config get global.extra-index-url 2>/dev/null)
PIP_LINKS := $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null) $(PIP_FIND_LINKS)
UV_SOURCES := --index-strategy unsafe-best-match $(foreach u,$(PIP_INDEXES),--extra-index-url $(u)) \
  $(foreach l,$(sort $(PIP_LINKS)),--find-links $(l))

# Re-installs only when pyproject.toml or the lock file changes; requirements.lock pins the whole environment.
$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
	  { echo "error: $(VENV) is not Python 3.11; delete $(VENV) and install python3.11"; exit 1; }
	@{ $(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION) 2>/dev/null && \
	   $(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) $(UV_SOURCES) -e '.[test]' -c requirements.lock; } || \
	 { echo "uv unavailable or failed: installing with pip"; \
	   $(PY) -m pip install -q --disable-pip-version-check -e '.[test]' -c requirements.lock 2>&1 | grep -v "is ignored: it is neither"; } || true
	@$(PY) -c 'import helpers, torch, litert_torch, torch_pruning, skopt, papermill' || \
	  { echo "error: the install into $(VENV) failed; see pip's output above"; exit 1; }
	@touch $@

# Debian packages for the offline datasets (Fashion-MNIST and the fonts behind `glyphs`) and the book's browser.
$(VENV)/.system: $(FONT_LIST) Makefile
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  if dpkg -s $(DEB_PACKAGES) >/dev/null 2>&1; then echo "Debian packages for the datasets and the browser: present"; \
	  else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES) >/dev/null \
	    && echo "Debian packages for the datasets and the browser: installed"; fi; \
	else echo "skipped installing Debian packages ($(DEB_PACKAGES)): not root on Debian; install them yourself or place the data under data/"; fi
	@mkdir -p $(VENV) && touch $@

run: setup
	$(PY) -m helpers run --profile $(PROFILE)

# The controls (narrow networks trained from scratch, Scratch-B of 08's plans): their own target, about 30 min here;
# the chain reads their committed table.
controls: setup
	$(PY) -m helpers controls --profile $(PROFILE)

smoke: setup
	$(PY) -m helpers run --profile smoke

# Two workers (pytest-xdist; tests/conftest.py gives each one thread and its own runs folder, and keeps the tests of
# the smoke chain on one); --durations: the slowest tests, to keep the suite's time in view (target: under 20 minutes)
test: setup
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=15

# The fast tier for edits: every test that takes well under a second or two (no export, notebook, training run or
# timed search; those are marked slow and run in `make test`), on two workers: about 40 s here.
check: setup
	$(PY) -m pytest -q -n 2 -m "not slow"

# docs/results.md and the README's answer, regenerated from the committed tables under results/.
report: setup
	$(PY) -m helpers report --profile $(PROFILE) --write

# The book: the committed executed chapters, the answer, the docs pages, the results and the studies as static HTML (runs/book/<profile>/),
# then read in headless Chromium; no kernel, no re-run of the chain (seconds).
book: setup
	$(PY) -m helpers book --profile $(PROFILE) --check

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

# Every benchmark against its reference row (benchmarks/reference.csv); exits non-zero when any target is missed.
# Minutes to an hour on 2 cores; CI does not run it. Run it on a quiet machine.
bench: setup
	@fail=0; for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || fail=1; done; exit $$fail

clean:
	rm -rf runs/smoke
