#!/usr/bin/env bash
# Set up .venv with a CPU build of torch (unless a GPU is present) and fc4dfs-bench with its test extras.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
TORCH_VERSION="${FC4DFS_TORCH_VERSION:-2.13.0}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)

if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # 1) a wheel already on this machine (pip find-links), 2) the CPU-only index when there is no GPU,
  # 3) the default index (CUDA builds) only when an NVIDIA GPU is present.
  probe=$(mktemp -d)
  if "${PIP[@]}" download --no-index --no-deps -d "$probe" "torch==${TORCH_VERSION}" >/dev/null 2>&1; then
    # a wheel pip can already see (e.g. a find-links folder): install it with its dependencies
    "${PIP[@]}" install "torch==${TORCH_VERSION}"
  elif ! command -v nvidia-smi >/dev/null 2>&1; then
    "${PIP[@]}" install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
  else
    "${PIP[@]}" install "torch==${TORCH_VERSION}"
  fi
fi
# distributed: Ray, so that the --executor ray tests run (about 35 s and 240 MB more)
"${PIP[@]}" install -e ".[test,distributed]"
"${PIP[@]}" install -e examples/fc4dfs-nn-baseline
