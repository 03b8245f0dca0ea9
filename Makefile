# idp: two commands. `make run` serves a demo; `make test` runs lint, types and the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTANCE ?= instance
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test lint typecheck pytest bench clean browser-deps sandbox-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip

$(VENV)/.run-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.run-deps

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: $(VENV)/.run-deps sandbox-deps
	$(BIN)/idp --instance $(INSTANCE) init
	$(BIN)/idp --instance $(INSTANCE) demo
	@echo ""
	@echo "idp is starting at http://localhost:$(PORT)"
	@echo "  discovery: http://localhost:$(PORT)/.well-known/openid-configuration"
	@echo "  (idp demo printed a ready-made login URL above)"
	@echo ""
	IDP_ISSUER=$${IDP_ISSUER:-http://localhost:$(PORT)} $(BIN)/idp --instance $(INSTANCE) serve --host $(HOST) --port $(PORT) --workers 2

lint: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.test-deps
	$(BIN)/mypy

# Debian packages the tests need: $(1) is installed when command $(2) is missing (as root).
define apt_need
	@if ! command -v $(2) >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's $(1)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $(1) >/dev/null; \
	  else \
	    echo "$(1) is missing and we are not root: $(3)"; \
	  fi; \
	fi
endef

# Browser tests drive Debian's Chromium (never a downloaded browser build).
browser-deps:
	$(call apt_need,chromium,/usr/bin/chromium,browser tests will be skipped)

# Actions run in bubblewrap sandboxes; without it they are refused.
sandbox-deps:
	$(call apt_need,bubblewrap,bwrap,Actions will be refused)

pytest: $(VENV)/.test-deps node_modules/.installed browser-deps sandbox-deps
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: $(VENV)/.test-deps node_modules/.installed
	$(BIN)/python bench/run.py
	$(BIN)/python bench/login.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
