# idp: two commands. `make run` serves a demo; `make test` runs lint, types and the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTANCE ?= instance
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test faults lint typecheck pytest bench bench-scale clean browser-deps sandbox-deps saml-deps console-assets

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

# The console's Actions code editor: CodeMirror 6 (package.json's pinned versions) bundled by
# esbuild into one minified, deterministic file under idp's static files, committed; the test
# tests/console/test_actions_bundle.py rebuilds it (EDITOR_BUNDLE=elsewhere) and compares bytes.
EDITOR_BUNDLE ?= idp/static/console/editor.js
console-assets: node_modules/.installed
	node_modules/.bin/esbuild console/editor/src/editor.js --bundle --minify --format=iife \
	  --target=es2020 --legal-comments=none --charset=utf8 --log-level=warning \
	  --outfile=$(EDITOR_BUNDLE)

# Where a browser reaches them: localhost for a loopback or wildcard HOST, else HOST itself.
PUBLIC_HOST = $(if $(filter 127.0.0.1 0.0.0.0 :: ::1 localhost,$(HOST)),localhost,$(HOST))
ISSUER = $(or $(IDP_ISSUER),http://$(PUBLIC_HOST):$(PORT))
DEMO_PORT = $(shell expr $(PORT) + 1)
DEMO_APP_URL = http://$(PUBLIC_HOST):$(DEMO_PORT)
IDP_RUN = IDP_ISSUER=$(ISSUER) $(BIN)/idp --instance $(INSTANCE)

# A second run keeps the instance and its demo data (idp demo says where the password is).
# The demo app (idp demo-app, a separate relying party) runs beside the server until Ctrl-C.
run: $(VENV)/.run-deps sandbox-deps saml-deps
	$(IDP_RUN) init
	$(IDP_RUN) demo --app-url $(DEMO_APP_URL)
	@echo ""
	@echo "idp is starting at $(ISSUER), the demo app at $(DEMO_APP_URL):"
	@echo "open $(DEMO_APP_URL) and press Log in. Ctrl-C stops both."
	@echo ""
	@$(IDP_RUN) demo-app --host $(HOST) --port $(DEMO_PORT) & demo=$$!; \
	  trap 'kill $$demo 2>/dev/null' EXIT INT TERM; \
	  $(IDP_RUN) serve --host $(HOST) --port $(PORT) --workers 2

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

# SAML connections check XML signatures with xmlsec1 (pysaml2's backend); without it they
# are refused.
saml-deps:
	$(call apt_need,xmlsec1,xmlsec1,SAML connections will be refused)

# One pytest-xdist worker per core (TEST_WORKERS=0 runs in one process); a test file stays on
# one worker, so a module's live server is built once.
TEST_WORKERS ?= auto
pytest: $(VENV)/.test-deps node_modules/.installed browser-deps sandbox-deps saml-deps
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

test: lint typecheck pytest

# Fault injection (issue 17; tests marked `faults`, which `make test` deselects): a private
# PostgreSQL cluster restarted under load, workers of a real `idp serve` killed mid-request.
# Needs PostgreSQL's server binaries (initdb, pg_ctl; Debian's postgresql package).
faults: $(VENV)/.test-deps
	$(BIN)/pytest -q -m faults tests/operations

bench: $(VENV)/.test-deps node_modules/.installed
	$(BIN)/python bench/run.py
	$(BIN)/python bench/pkj.py
	$(BIN)/python bench/dpop.py
	$(BIN)/python bench/login.py
	$(BIN)/python bench/social.py
	$(BIN)/python bench/saml.py
	$(BIN)/python bench/users_search.py
	$(BIN)/python bench/actions.py

# A million users on PostgreSQL (~10 min with the seed, ~2 min once seeded): not in `bench`
bench-scale: $(VENV)/.test-deps
	$(BIN)/python bench/scale.py --users 1000000 --clients 10000

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
