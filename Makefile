# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-fast lint bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## Run the app: web on http://$(HOST):$(PORT) plus a real Celery worker (SQLite + filesystem broker unless
## DATABASE_URL / CELERY_BROKER_URL say otherwise). Ctrl-C stops both.
run: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_setup
	@echo "Open http://$(HOST):$(PORT)/ — Ctrl-C stops the web server and the worker."
	@trap 'kill 0' INT TERM EXIT; \
	$(VENV)/bin/celery -A explainer_site worker -Q celery,gpu,interactive --concurrency 2 --loglevel INFO & \
	$(PY) manage.py runserver $(HOST):$(PORT) --noreload

## Everything the tests need (Redis and Chromium from Debian when missing), then the whole suite.
test: $(VENV)/.installed
	bash scripts/test_deps.sh
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not integration and not browser"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed
	$(PY) -m bench

clean:
	rm -rf var/ .pytest_cache
