#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests, once.
#
# Playwright's own browser download cannot work on our build machines, so the
# tests drive the distribution's /usr/bin/chromium instead. This script is
# idempotent: with Chromium present it only says so and exits 0. Installing
# needs root (apt-get); without it the script says what to run and exits 1,
# so a caller (the browser test under CI) fails with that sentence.
set -euo pipefail

CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
# apt-get can sit behind a lock held by unattended upgrades; wait this long at most.
APT_LOCK_TIMEOUT_S=120

if [[ -x "${CHROMIUM_PATH}" ]]; then
    echo "chromium already installed: ${CHROMIUM_PATH} ($("${CHROMIUM_PATH}" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "chromium is missing at ${CHROMIUM_PATH} and installing it needs root:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y chromium" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium is missing at ${CHROMIUM_PATH} and this system has no apt-get;" \
        "install Chromium with the system's package manager" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout="${APT_LOCK_TIMEOUT_S}" update
apt-get -o DPkg::Lock::Timeout="${APT_LOCK_TIMEOUT_S}" install -y --no-install-recommends chromium

if [[ ! -x "${CHROMIUM_PATH}" ]]; then
    echo "apt-get installed chromium but ${CHROMIUM_PATH} is still missing" >&2
    exit 1
fi
echo "chromium installed: ${CHROMIUM_PATH} ($("${CHROMIUM_PATH}" --version 2>/dev/null || echo 'version unknown'))"
