#!/usr/bin/env bash
# Set up (if needed) and run the test-suite with strict plugin loading.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export FC4DFS_STRICT_PLUGINS=1
.venv/bin/fc4dfs-bench --strict list plugins
exec .venv/bin/python -m pytest -q "$@"
