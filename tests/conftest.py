"""Shared test set-up: quiet progress bars, a private cache, the test components on the path."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
os.environ.setdefault("FC4DFS_PROGRESS", "0")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    if "FC4DFS_CACHE" not in os.environ:
        os.environ["FC4DFS_CACHE"] = str(tmp_path_factory.mktemp("fc4dfs-cache"))
    yield


@pytest.fixture(autouse=True)
def _threads():
    """Tests run tiny models: one torch thread avoids OpenMP spin-waits and is fair to a shared 2-core CPU.

    Reset before every test, since the CLI's ``--threads`` (default: all cores) changes it for the process.
    """
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture
def test_registry():
    """The global registry plus the test components (restored afterwards)."""
    import fc4dfs_test_components

    from fc4dfs.plugins import manager

    old = manager._REGISTRY
    reg = manager.discover(strict=True, extra=[(fc4dfs_test_components, "fc4dfs-tests")])
    manager.set_registry(reg)
    yield reg
    manager.set_registry(old)


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for running the CLI in a subprocess with the test components loaded."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH", "")]))
    env["FC4DFS_PLUGINS"] = "fc4dfs_test_components"
    env["FC4DFS_PROGRESS"] = "0"
    return env
