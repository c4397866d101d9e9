# UniROSS onboard stack. The two commands a newcomer needs:
#   make demo   - install and run the service on the built-in simulated vehicle, open the dashboard
#   make test   - install everything and run the whole test suite (unit, property, browser, HIL on a real vcan)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: install demo test unit hil hil-netns lint bench screenshot clean

install:
	scripts/install.sh

demo: install
	$(VENV)/bin/uniross run --sim --open --port $(PORT)

test: install
	scripts/test.sh

unit: install
	$(PY) -m pytest -q

hil: install
	$(PY) hil_tests/uml/run_in_guest.py --cwd "$(CURDIR)" -- $(PY) -m pytest hil_tests -q --color=no -p no:cacheprovider -p no:schemathesis -p no:hypothesispytest -p no:anyio

hil-netns: install
	scripts/netns_run.sh $(PY) -m pytest hil_tests -q --color=no -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

screenshot: install
	$(PY) -m telemetry.api.screenshot --url http://127.0.0.1:$(PORT) --out dashboard.png

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
