#!/usr/bin/env bash
# Set up (if needed) and run the main job on the embedded dataset: FC-LSTM + MIADNet, e2e protocol.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/fc4dfs-bench run --gen fc_lstm --dec miadnet --dataset synthetic --budget "${BUDGET:-quick}" "$@"
.venv/bin/fc4dfs-bench leaderboard show
