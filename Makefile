# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test services ui-deps bench-ui bench bench-ingest bench-synth bench-identity bench-profiles bench-incremental bench-api bench-models bench-traits bench-decide bench-segments bench-privacy clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,spark]'
	# Open Bandit Dataset sample for the off-policy evaluation check: obp needs Python < 3.11, so only its data is used.
	$(BIN)/pip install --quiet --no-deps --ignore-requires-python 'obp==0.5.7'
	touch $(STAMP)

setup: $(STAMP)

# The local services the tests talk to (PostgreSQL on 127.0.0.1:5432, trust auth, database `test`).
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
	  echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1

demo: setup
	$(BIN)/accord demo

# The browser the dashboard tests drive: Debian's Chromium (Playwright is told its path; it never downloads one).
ui-deps:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# Two workers, one test file each at a time (files share session fixtures such as the demo server).
test: setup services ui-deps
	$(BIN)/pytest -q -n 2 --dist loadfile

bench: bench-ingest bench-synth bench-identity bench-profiles bench-incremental bench-api bench-ui bench-models bench-traits bench-decide bench-segments bench-privacy

bench-ingest: setup
	$(BIN)/python bench/bench_ingest.py

bench-synth: setup
	$(BIN)/python bench/bench_synth.py

bench-identity: setup
	$(BIN)/python bench/bench_identity.py

bench-profiles: setup
	$(BIN)/python bench/bench_profiles.py

bench-incremental: setup
	$(BIN)/python bench/bench_incremental.py

# Collection on the embedded default; lookup and identify latency on PostgreSQL with 2 workers, the
# configuration their targets are stated for (the 1M-record store is built once, then copied once).
bench-api: setup services
	$(BIN)/python bench/bench_api.py
	$(BIN)/python bench/bench_api.py --scenario latency --store postgresql://127.0.0.1:5432/test --workers 2

bench-ui: setup
	$(BIN)/python bench/bench_ui.py

bench-segments: setup
	$(BIN)/python bench/bench_segments.py

bench-models: setup
	$(BIN)/python bench/bench_models.py

bench-traits: setup
	$(BIN)/python bench/bench_traits.py

bench-decide: setup
	$(BIN)/python bench/bench_decide.py

bench-privacy: setup
	$(BIN)/python bench/bench_privacy.py

clean:
	rm -rf $(VENV) accord-demo .pytest_cache bench/out
