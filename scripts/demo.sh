#!/usr/bin/env bash
# Set everything up, then show the main job: remember episodes, recall them by meaning,
# and print how to plug the server into Claude Desktop.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/python scripts/demo.py "$@"
