# Two commands do all the set-up on a fresh Debian machine:
#   make demo   installs everything, starts the private PostGIS, loads the real demo data, serves the dashboards
#   make test   installs everything and runs the whole test suite against a real PostGIS
# Both are safe to run again.

# Debian's own Python, so that the `postgres` user (and any ordinary user) can run the virtualenv too
PY      ?= /usr/bin/python3
VENV    := .venv
BIN     := $(VENV)/bin
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# gdal-bin (ogrinfo, ogr2ogr) and python3-qgis: the real OGC API clients of tests/e2e/test_ogc_clients.py
DEBS    := postgresql postgis postgresql-postgis chromium chromium-driver fonts-noto-cjk poppler-utils python3-venv \
           gdal-bin python3-qgis
HOST    ?= 127.0.0.1
PORT    ?= 8050
# Another apt or dpkg process (unattended-upgrades, a second `make` in another checkout) may hold the Debian package
# lock; apt-get then waits for it, up to this many seconds, instead of failing.
APT_LOCK_WAIT_S ?= 600
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=$(APT_LOCK_WAIT_S)
# The package-manager locks held right now, one "path pid command" line each (util-linux `lslocks`, essential on Debian).
APT_LOCKS_HELD := $(SUDO) lslocks -n -o PATH,PID,COMMAND 2>/dev/null | grep -E -e '^/var/lib/dpkg/lock(-frontend)? ' -e '^/var/lib/apt/lists/lock ' -e '^/var/cache/apt/archives/lock '

# $(call apt_get,ARGS): apt-get ARGS that waits while another process holds a package lock, and says which lock and
# which process. `apt-get install` waits by itself (DPkg::Lock::Timeout) but silently; `apt-get update` does not wait
# for the lists lock at all (apt 2.6 fails at once), so it is tried again every 5 s.
define apt_get
waited=0; \
until held=$$($(APT_LOCKS_HELD) | tr -s ' ' | paste -sd ';' -); [ -z "$$held" ] && $(APT_GET) $(1); do \
	[ -n "$$held" ] || held=$$($(APT_LOCKS_HELD) | tr -s ' ' | paste -sd ';' -); \
	[ -n "$$held" ] || exit 1; \
	if [ $$waited -ge $(APT_LOCK_WAIT_S) ]; then \
		echo "apt-get $(firstword $(1)): gave up after $(APT_LOCK_WAIT_S) s waiting for the Debian package lock ($$held)" >&2; \
		exit 1; \
	fi; \
	echo "apt-get $(firstword $(1)): waiting for the Debian package lock held by another process ($$held); $$waited s of at most $(APT_LOCK_WAIT_S) s"; \
	sleep 5; waited=$$((waited + 5)); \
done
endef

.PHONY: install demo test bench clean-db

$(VENV)/.debs:
	@echo "Debian packages: $(DEBS) (apt-get waits up to $(APT_LOCK_WAIT_S) s for the package lock if another apt or dpkg process holds it)"
	@$(call apt_get,update)
	@$(call apt_get,install -y --no-install-recommends $(DEBS))
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
	$(BIN)/mypy geoops layers dashboards
	SITROOM_TESTS_NEED_DB=1 $(BIN)/python -m pytest -q --hypothesis-profile=ci

bench: install
	$(BIN)/python -m bench

clean-db:
	-$(BIN)/sitroom db down
	rm -rf .sitroom
