# pvlog: `make demo` and `make test` work on a fresh Debian/Ubuntu machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := influxdb mosquitto
TEST_APT_PACKAGES := victoria-metrics openssl prometheus systemd chromium chromium-driver ser2net poppler-utils groff-base

.PHONY: install system-packages test-packages demo test check bench lint clean

# Test workers: the suite mostly waits (servers, ptys, processes), so more workers than
# cores. Each worker has its own ports, InfluxDB, databases and temporary directories.
WORKERS ?= 4
PYTEST := $(PY) -m pytest -q -n $(WORKERS) --dist worksteal

install: system-packages $(STAMP)

# Debian packages the tests and the demo run for real (InfluxDB, Mosquitto); installed only
# when missing. Their services are not started: pvlog starts private instances itself.
# The tests also need VictoriaMetrics (a server of the InfluxDB v2 write API), openssl
# (to make a CA), Prometheus, systemd-analyze, a headless Chromium with its driver,
# ser2net, poppler (a PDF's text) and groff (the manual page): only `make test` installs those.
system-packages:
	@$(MAKE) --no-print-directory apt PACKAGES="$(APT_PACKAGES)"

test-packages:
	@$(MAKE) --no-print-directory apt PACKAGES="$(TEST_APT_PACKAGES)"

apt:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: install
	$(VENV)/bin/pvlog demo

# The whole suite, as CI runs it: unit, integration on real ptys and servers, end to end.
test: install test-packages
	$(PYTEST)

# The daily loop, under a minute: lint, then the unit and integration tests.
check: install test-packages lint
	$(PYTEST) tests/unit tests/integration

bench: install test-packages
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict drivers daemon

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache .mypy_cache .ruff_cache
