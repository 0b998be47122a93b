"""The one normaliser (``fc4dfs.zoo.normalise``): fits, inverse maps, buffers in checkpoints."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from fc4dfs.plugins.checkpoint import prefixed, unprefixed
from fc4dfs.zoo.normalise import Normaliser, rms

REPO = Path(__file__).resolve().parents[1]


def frames(n: int = 40, d: int = 12, rank: int | None = None, seed: int = 0) -> np.ndarray:
    """``[n, d]`` float32 'landmark' rows in mm with coordinate scales from 0.5 to 20 mm."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, rank or d))
    mix = rng.normal(size=(rank or d, d))
    return (50.0 + z @ mix * np.linspace(0.5, 20.0, d)).astype(np.float32)


def test_standardise_with_all_components_inverts_and_whitens() -> None:
    x = frames()
    norm = Normaliser().fit_standardise("f", x, components=x.shape[1])
    z = norm.encode("f", x)
    assert isinstance(z, np.ndarray) and z.dtype == np.float32 and z.shape == x.shape
    err, limit = float(np.abs(norm.decode("f", z) - x).max()), 1e-4 * float(np.abs(x).max())
    assert err < limit, f"round trip {err} >= {limit} mm"
    dev, limit = float(np.abs(z.std(0) - 1.0).max()), 1e-3  # whitened: unit deviation per component
    assert dev < limit, f"component std off by {dev} >= {limit}"


def test_fewer_components_leave_a_residual_outside_the_span() -> None:
    x = frames()
    norm = Normaliser().fit_standardise("f", x, components=3)
    assert norm.dim("f") == 3 and norm.encode("f", x).shape == (len(x), 3)
    res = norm.residual("f", x)
    spread = float(np.abs(x - x.mean(0)).mean())
    assert float(np.abs(res).mean()) > 1e-3 * spread, "3 of 12 components cannot span the data"
    back, limit = float(np.abs(norm.encode("f", x.mean(0) + res)).max()), 1e-3  # residual projects to ~0
    assert back < limit, f"residual has component coefficients {back} >= {limit}"


def test_pca_keeps_unspanned_directions_at_zero() -> None:
    x = frames(n=30, d=12, rank=4)
    norm = Normaliser().fit_pca("f", x, components=6)
    z = norm.encode("f", torch.from_numpy(x))
    assert isinstance(z, torch.Tensor) and z.shape == (30, 6)
    assert torch.count_nonzero(norm.stat("f_basis")[:, 4:]) == 0 and torch.all(norm.stat("f_sd")[4:] == 1)
    assert float(z[:, 4:].abs().max()) == 0.0
    dev, limit = float((z[:, :4].std(0, unbiased=False) - 1).abs().max()), 1e-3
    assert dev < limit, f"spanned components' std off by {dev} >= {limit}"


def test_state_dict_round_trip_and_device_move() -> None:
    x = frames()
    norm = (Normaliser().fit_standardise("frames", x, components=5).add("disp", std=max(rms(x - x.mean(0)), 1e-3))
            .add_statistic("weights", np.ones(4)))
    state = unprefixed("norm", prefixed("norm", norm.state_dict()))
    assert all(t.dtype == torch.float32 for t in state.values())
    again = Normaliser.from_state(state).to("cpu")
    assert sorted(again.fields) == ["disp", "frames"]
    for field in ("frames", "disp"):
        np.testing.assert_array_equal(again.encode(field, x), norm.encode(field, x))
    # numpy in, numpy out: the same numbers as the tensor path
    np.testing.assert_array_equal(norm.decode("frames", norm.encode("frames", x)),
                                  norm.decode("frames", norm.encode("frames", torch.from_numpy(x))).numpy())
    with pytest.raises(KeyError, match="no statistic 'nope'"):
        again.stat("nope")


def test_add_refuses_half_a_basis() -> None:
    with pytest.raises(ValueError, match="basis and sd go together"):
        Normaliser().add("f", basis=np.eye(3))


def test_one_normaliser_class_in_the_code() -> None:
    found = []
    for folder in ("plugins", "datasets", "zoo", "benchmark"):
        for path in (REPO / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            found += [f"{path.relative_to(REPO)}:{n.lineno}" for n in ast.walk(tree)
                      if isinstance(n, ast.ClassDef) and n.name.lower().startswith("normali")]
    assert found == ["zoo/normalise.py:" + str(_line("zoo/normalise.py", "class Normaliser("))], found


def _line(rel: str, text: str) -> int:
    return next(i for i, line in enumerate((REPO / rel).read_text().splitlines(), 1) if line.startswith(text))
