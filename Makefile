# ISPBX Manager. The two commands: `make run` (serve the API) and `make test` (everything CI runs).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(abspath $(VENV))/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint typecheck unit integration lab-up lab-down demo bench screenshots clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(VENV)/bin/python backend/pyproject.toml
	@echo "installing the backend…"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e 'backend[dev]'
	touch $(STAMP)

## Serve the API on ISPBX_HTTP_HOST:ISPBX_HTTP_PORT (default 127.0.0.1:8000).
run: $(STAMP)
	cd backend && exec $(PY) src/main.py

## Lint, format check, type check, unit and integration tests (real Asterisk lab).
test: lint typecheck
	cd backend && $(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	cd backend && $(PY) -m ruff check src tests bench tools && $(PY) -m ruff format --check src tests bench tools

typecheck: $(STAMP)
	cd backend && $(PY) -m mypy && $(PY) -m mypy --strict tools

unit: $(STAMP)
	cd backend && $(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

integration: $(STAMP)
	cd backend && $(PY) -m pytest -q tests/integration $(PYTEST_ARGS)

## A long-running lab Asterisk on the default ports (AMI 5038, SIP 5060, HTTP 8088).
lab-up: $(STAMP)
	cd backend && PYTHONPATH=src $(PY) -m ispbx_lab up

lab-down: $(STAMP)
	cd backend && PYTHONPATH=src $(PY) -m ispbx_lab down

## The lab loaded with the sample pjsip.conf, phones registered, and the service wired to it.
demo: $(STAMP)
	cd backend && PYTHONPATH=src exec $(PY) -m ispbx_lab demo

## Service vs Asterisk's ARI on a lab with 5,000 and 10,000 endpoints (BENCH_ENDPOINTS=5000 for one).
bench: $(STAMP)
	cd backend && PYTHONPATH=src $(PY) -m bench.run_bench

## Rewrite the README's screenshots in docs/ (the e2e tests take them; `make test` keeps them in a temp dir).
screenshots: $(STAMP)
	cd backend && ISPBX_SCREENSHOT_DIR=$(abspath docs) $(PY) -m pytest -q tests/e2e $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) backend/.pytest_cache backend/.mypy_cache backend/.ruff_cache
