#!/usr/bin/env bash
# Set up reme-mcp in ./.venv: safe to run again, needs only the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
# torch first, pinned: this exact version is a CPU wheel; any other spec pulls GBs of CUDA.
.venv/bin/pip install --quiet --disable-pip-version-check "torch==2.13.0"
# Extras: the test tools, SQLCipher (privacy.encryption_key), psycopg (vector_store.default.backend=pgvector).
.venv/bin/pip install --quiet --disable-pip-version-check -e ".[test,encryption,pgvector]"
echo "reme-mcp is installed: $(pwd)/.venv/bin/reme" >&2
