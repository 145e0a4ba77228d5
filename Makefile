# One source of truth for installs: uv.lock, synced by the targets below (and by the Dockerfiles).
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# Running needs no dev tools: its own environment, synced without them (so `make test`'s is kept).
RUN_VENV := .venv-run

.PHONY: run test coverage lint bench format fuzz audit clean

# uv itself comes from PyPI into a private folder, so a machine with only Python needs nothing else.
$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) sync --locked --python $(PYTHON)
	@touch $@

$(RUN_VENV)/.synced: pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(RUN_VENV) UV_PYTHON_DOWNLOADS=never $(UV) sync --locked --no-dev --python $(PYTHON)
	@touch $@

## run: the embedded default (SQLite + ./var/objects); PORT, TRANSCODER_PORT and every setting honoured
run: $(RUN_VENV)/.synced
	PATH="$(CURDIR)/$(RUN_VENV)/bin:$$PATH" infra/run-local.sh

## test: the whole suite against real PostgreSQL, an S3 endpoint over HTTP and real ffmpeg
test: $(VENV)/.synced
	$(BIN)/python -m pytest

## coverage: the suite under coverage (the live servers it starts included); line coverage of
## gateway/, transcoder/ and servicekit/, then per file
coverage: $(VENV)/.synced
	rm -f .coverage .coverage.*
	$(BIN)/python -m pytest --cov --cov-report=
	@for package in gateway transcoder servicekit; do \
		printf '%-11s %s%%\n' "$$package/" "$$($(BIN)/coverage report --include="$$package/*" --format=total)"; \
	done
	$(BIN)/coverage report --skip-covered --sort=cover

## lint: ruff (lint + format check) and mypy --strict
lint: $(VENV)/.synced
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bench: riffle against the raw single-core ffmpeg encode, side by side: each issue-15 target
## with its figure and whether it is met, and each speed path's quality; writes
## docs/benchmarks.{md,json} (BENCH_ARGS=--long adds a 3600 s file; --quick: a smoke run in /tmp)
bench: $(VENV)/.synced
	$(BIN)/python -m bench $(BENCH_ARGS)

## fuzz: the WAV header fuzzer for FUZZ_SECONDS, then a long schemathesis run against the live API
FUZZ_SECONDS ?= 600
fuzz: $(VENV)/.synced
	mkdir -p var/fuzz-corpus
	$(BIN)/python -m tests.fuzz.seeds var/fuzz-corpus > /dev/null
	$(BIN)/python -m tests.fuzz.fuzz_wav -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=var/fuzz- var/fuzz-corpus
	SCHEMATHESIS_MAX_EXAMPLES=2000 $(BIN)/python -m pytest -q tests/contract

## audit: known vulnerabilities in every locked package (asks PyPI's advisory service: needs network)
audit: $(VENV)/.synced
	$(UV) export --format requirements-txt --all-groups --no-emit-project --frozen --quiet -o $(VENV)/audit-requirements.txt
	$(BIN)/pip-audit --strict --disable-pip --no-deps --require-hashes -r $(VENV)/audit-requirements.txt

format: $(VENV)/.synced
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(RUN_VENV) .tools .mypy_cache .ruff_cache .pytest_cache .coverage .coverage.*
