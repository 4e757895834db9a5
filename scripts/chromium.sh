#!/usr/bin/env bash
# Install Debian's Chromium for the explorer's browser test if it is missing (needs root or
# passwordless sudo). Playwright's own browser download does not work offline; the tests drive
# this binary through Playwright's executable_path instead.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium
