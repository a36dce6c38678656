# Onco'Link: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1/test
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: demo test test-postgres test-all deps browser translations lint bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

deps: $(STAMP)

## Headless Chromium for the browser tests (Debian package; Playwright's own download does not work here).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)) ; \
	  else echo "install Debian's chromium (sudo apt-get install chromium) for the browser tests" >&2; exit 1; fi; }

## Run the platform: web + scheduler in one process, console SMS, demo data, logins printed. Always on
## its own SQLite file instance/demo.db, whatever ONCOLINK_DATABASE_URL says; DEMO_ARGS="--database URL"
## names another database (refused unless empty or made by the demo), DEMO_ARGS="--port 5001" another port.
demo: deps
	mkdir -p instance
	ONCOLINK_ENV=development $(BIN)/flask --app wsgi demo $(DEMO_ARGS)

## Run the whole test suite (SQLite by default; set TEST_DATABASE_URL for PostgreSQL).
test: deps browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-postgres: deps browser
	TEST_DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest $(PYTEST_ARGS)

test-all: test test-postgres

## Re-extract the strings and update the French catalogue (then translate the new entries and compile).
translations: deps
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o app/translations/messages.pot app
	$(BIN)/pybabel update -i app/translations/messages.pot -d app/translations --no-fuzzy-matching
	$(BIN)/pybabel compile -d app/translations --statistics

clean:
	rm -rf $(VENV) instance/*.db *.egg-info
