#!/usr/bin/env bash
# The whole test suite: lint + types, unit/property/browser tests on the host, then the HIL suite on a real vcan
# inside a User-Mode Linux guest (docs/hil.md). Any failure, or a stage that collects no test, fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
status=0
stage() { echo; echo "=== $1"; }
pytest_stage() {  # pytest exit code 5 (no tests collected) is a failure here, never a silent success
  "$@"; local rc=$?
  if [ $rc -eq 5 ]; then echo "FAILED: no tests were collected by: $*"; return 1; fi
  return $rc
}

stage "ruff"; .venv/bin/ruff check . || status=1
stage "mypy"; .venv/bin/mypy || status=1
stage "unit, property and browser tests (host)"
pytest_stage $PY -m pytest -q -p no:cacheprovider tests || status=1
stage "HIL suite on a real vcan (User-Mode Linux guest)"
pytest_stage $PY hil_tests/uml/run_in_guest.py --cwd "$PWD" -- \
  $PY -m pytest hil_tests -q --color=no -p no:cacheprovider -p no:schemathesis -p no:hypothesispytest -p no:anyio || status=1

echo
if [ $status -eq 0 ]; then echo "ALL STAGES PASSED"; else echo "SOME STAGES FAILED"; fi
exit $status
