#!/usr/bin/env bash
# Install Debian's chromium for the dashboard test (tests/test_dashboard_browser.py), which
# renders /dashboard in real headless Chromium and checks the screenshot. Idempotent: does
# nothing when /usr/bin/chromium exists. Needs root (CI and the dev machines run as root).
#
# Usage: bash scripts/install-chromium.sh
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
    echo "install-chromium: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed" >&2
    exit 0
fi
SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# fonts-dejavu-core: readable text in the screenshot on a minimal image
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "install-chromium: $(/usr/bin/chromium --version)" >&2
