#!/usr/bin/env bash
# Regenerate the evaluator shipped with the package (benchmark/evaluator_files/synthetic.safetensors):
# the classifiers behind CA, CA (mesh) and FID for the default `synthetic` dataset, trained at the quick
# budget with seed 0 on its generator-training identities through the component store, one thread
# (a fixed float path), stored as float16 (~1.6 MB). Prints the content hash that rows will carry.
# Run it after changing the synthetic dataset or a classifier (its version), then commit the file.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH="${FC4DFS_BENCH:-.venv/bin/fc4dfs-bench}"
"$BENCH" evaluator train --dataset synthetic --budget quick --seed 0 --half --threads 1 \
  --out benchmark/evaluator_files/synthetic.safetensors
"$BENCH" evaluator show benchmark/evaluator_files/synthetic.safetensors
