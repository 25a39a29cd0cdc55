# Two commands do all the set-up on a fresh Debian machine:
#   make demo   installs everything, starts the private PostGIS, loads the real demo data, serves the dashboards
#   make test   installs everything and runs the whole test suite against a real PostGIS
# Both are safe to run again.

# Debian's own Python, so that the `postgres` user (and any ordinary user) can run the virtualenv too
PY      ?= /usr/bin/python3
VENV    := .venv
BIN     := $(VENV)/bin
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBS    := postgresql postgis postgresql-postgis chromium chromium-driver fonts-noto-cjk poppler-utils python3-venv
HOST    ?= 127.0.0.1
PORT    ?= 8050

.PHONY: install demo test bench clean-db

$(VENV)/.debs:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(DEBS)
	$(PY) -m venv $(VENV)
	touch $@

$(VENV)/.installed: $(VENV)/.debs pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/sitroom db up
	$(BIN)/sitroom demo load
	$(BIN)/sitroom tiles build
	$(BIN)/sitroom serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/ruff check .
	$(BIN)/mypy geoops layers
	SITROOM_TESTS_NEED_DB=1 $(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m bench

clean-db:
	-$(BIN)/sitroom db down
	rm -rf .sitroom
