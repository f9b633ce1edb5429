#!/usr/bin/env bash
# Installs what the test suite drives for real, from Debian's packages (never a downloaded browser):
# a Redis server, PostgreSQL, Chromium, and docker-compose (only to validate docker-compose.yml; no engine needed).
# Idempotent and quiet: does nothing when everything is already there.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
# PostgreSQL's server binaries live under /usr/lib/postgresql/<version>/bin, not on PATH.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "The tests need: ${need[*]}. Install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
