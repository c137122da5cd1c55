# Two commands on a fresh machine: `make run` and `make test`. Everything else is set up by
# them: a virtualenv in .venv with the pinned dependencies, and PostgreSQL from a wheel.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test bench protos lint clean web web-build web-protos console

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]' -e clients/python
	touch $(STAMP)

setup: $(STAMP)

# The web SDK, the demo shop page and the console's browser files are built first when npm is
# here (quick when nothing changed); without npm everything else starts, `nudge run` serves no
# demo page and the console draws no previews.
run: setup
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory --silent web-build console; \
	else echo "make run: npm not found, so the web SDK, the demo shop page and the console's previews were not built and the demo page is not served (Node 20 and npm build them)"; fi
	$(BIN)/nudge run

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m tests.bench $(BENCH)

protos: setup
	$(BIN)/python -m nudgetools.protogen libs
	$(BIN)/python -m nudgetools.protogen --client clients/python/src/nudge_client/_proto
	$(BIN)/python -m nudgetools.protogen --descriptor-set
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory web-protos; \
	else echo "make protos: npm not found, so clients/web/src/gen was not regenerated"; fi

lint: setup
	cd protos && ../$(BIN)/buf lint

# The web SDK (clients/web) needs Node 20 and npm; `make test` runs this target through
# tests/unit/test_web_sdk.py. node_modules is reinstalled only when package-lock.json changes,
# and dist/ (the SDK bundle and the demo shop page in dist/demo) rebuilt only when a source did.
WEB := clients/web
WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/demo $(WEB)/scripts -type f 2>/dev/null) \
	$(WEB)/package.json $(WEB)/tsconfig.json $(WEB)/tsconfig.types.json
$(WEB)/node_modules/.installed: $(WEB)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "make web: npm not found; Node 20 and npm build the web SDK"; exit 1; }
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB)/dist/.built: $(WEB)/node_modules/.installed $(WEB_SOURCES)
	cd $(WEB) && npm run --silent build
	touch $@

web-build: $(WEB)/dist/.built

web: web-build
	cd $(WEB) && npm test --silent

web-protos: $(WEB)/node_modules/.installed
	cd $(WEB) && npm run --silent generate

# The console's browser files in console/build (built, never committed): htmx from its npm
# package, and the web SDK's bundle, which draws the previews; each copied again only when
# its source changed.
CONSOLE := console
$(CONSOLE)/node_modules/.installed: $(CONSOLE)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "make console: npm not found; Node 20 and npm build the console's files"; exit 1; }
	cd $(CONSOLE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CONSOLE)/build/htmx.min.js: $(CONSOLE)/node_modules/.installed
	mkdir -p $(CONSOLE)/build
	cp $(CONSOLE)/node_modules/htmx.org/dist/htmx.min.js $@

$(CONSOLE)/build/nudge.js: $(WEB)/dist/.built
	mkdir -p $(CONSOLE)/build
	cp $(WEB)/dist/nudge.js $@

console: $(CONSOLE)/build/htmx.min.js $(CONSOLE)/build/nudge.js

clean:
	rm -rf $(VENV) .pytest_cache $(WEB)/node_modules $(WEB)/dist $(CONSOLE)/node_modules $(CONSOLE)/build
