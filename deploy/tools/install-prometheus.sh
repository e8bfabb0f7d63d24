#!/usr/bin/env bash
# Installs promtool (Debian's `prometheus` package) so the deploy tests can check the scrape configs.
# Exit codes: 0 installed or already there, 3 no apt-get on this machine (the tests then skip, saying so).
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-prometheus: no apt-get here; install Prometheus (for promtool) by hand" >&2
    exit 3
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends keeps it to the server and promtool (no node exporter, no web console assets).
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v promtool >/dev/null
