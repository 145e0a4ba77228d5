# One source of truth for installs: uv.lock, synced by the targets below (and by the Dockerfiles).
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint format clean

# uv itself comes from PyPI into a private folder, so a machine with only Python needs nothing else.
$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) sync --locked --python $(PYTHON)
	@touch $@

## run: the embedded default (SQLite + ./var/objects); PORT, TRANSCODER_PORT and every setting honoured
run: $(VENV)/.synced
	PATH="$(CURDIR)/$(BIN):$$PATH" infra/run-local.sh

## test: the whole suite against real PostgreSQL, an S3 endpoint over HTTP and real ffmpeg
test: $(VENV)/.synced
	$(BIN)/python -m pytest

## lint: ruff (lint + format check) and mypy --strict
lint: $(VENV)/.synced
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.synced
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache
