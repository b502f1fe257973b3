# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test services bench bench-ingest bench-synth bench-identity bench-profiles bench-api clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,spark]'
	touch $(STAMP)

setup: $(STAMP)

# The local services the tests talk to (PostgreSQL on 127.0.0.1:5432, trust auth, database `test`).
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
	  echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1

demo: setup
	$(BIN)/accord demo

test: setup services
	$(BIN)/pytest -q

bench: bench-ingest bench-synth bench-identity bench-profiles bench-api

bench-ingest: setup
	$(BIN)/python bench/bench_ingest.py

bench-synth: setup
	$(BIN)/python bench/bench_synth.py

bench-identity: setup
	$(BIN)/python bench/bench_identity.py

bench-profiles: setup
	$(BIN)/python bench/bench_profiles.py

bench-api: setup services
	$(BIN)/python bench/bench_api.py

clean:
	rm -rf $(VENV) accord-demo .pytest_cache bench/out
