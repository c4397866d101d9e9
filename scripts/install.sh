#!/usr/bin/env bash
# Installs everything the UniROSS stack and its tests need on a fresh Debian machine, as root, with no prompts:
# apt packages (User-Mode Linux + can-utils for the HIL suite, Chromium for the dashboard test) and the venv.
# Usage: scripts/install.sh [--runtime-only]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME_ONLY=0
[ "${1:-}" = "--runtime-only" ] && RUNTIME_ONLY=1

# UML guest + vcan (HIL), can-utils peers, Chromium (dashboard test), gcc (UML FPU-state shim), unshare/pgrep
APT_PACKAGES=(user-mode-linux can-utils chromium iproute2 busybox-static gcc libc6-dev util-linux procps)
if [ "$RUNTIME_ONLY" = 0 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=""; fi
    echo "install: apt packages ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "install: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.uniross-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "install: pip install -e .[dev]"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi
echo "install: done"
