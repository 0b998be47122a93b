"""Mesh machinery: spirals on meshes with boundaries, CoMA sampling matrices, hierarchy, layers."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from fc4dfs.datasets.fixtures import tiny_dataset
from fc4dfs.zoo.mesh.hierarchy import MeshHierarchy, build_hierarchy, cached_hierarchy
from fc4dfs.zoo.mesh.layers import NaiveSpiralConv, Resample, SpiralConv
from fc4dfs.zoo.products import Linear
from fc4dfs.zoo.mesh.sampling import closest_barycentric, decimate, upsampling_matrix
from fc4dfs.zoo.mesh.spiral import GAP, ordered_fans, spiral_indices
from limits import assert_below


def grid(n: int, z: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """An ``n x n`` planar triangulated grid (boundary all around), counter-clockwise faces."""
    u = np.arange(n, dtype=np.float64)
    xx, yy = np.meshgrid(u, u)
    v = np.stack([xx.ravel(), yy.ravel(), np.full(n * n, z)], 1) * 10.0
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    return v, np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])


def neighbours(faces: np.ndarray, v: int) -> set[int]:
    return {int(u) for f in faces if v in f for u in f if u != v}


def shares_face(faces: np.ndarray, a: int, b: int) -> bool:
    return bool(((faces == a).any(1) & (faces == b).any(1)).any())


# --------------------------------------------------------------------------- spirals
def test_spiral_interior_vertex_is_ordered_ring():
    v, f = grid(9)
    sp = spiral_indices(v, f, steps=1, dilation=1, length=7)
    centre = 4 * 9 + 4
    ring = sp[centre, 1:]
    assert sp[centre, 0] == centre
    assert set(ring.tolist()) == neighbours(f, centre)
    # consecutive ring entries (cyclically) are joined by an edge: a spiral, not a shuffled set
    assert all(shares_face(f, int(ring[k]), int(ring[(k + 1) % len(ring)])) for k in range(len(ring)))


def test_spiral_two_rings_cover_the_two_disk():
    v, f = grid(9)
    sp = spiral_indices(v, f, steps=2, dilation=1, length=19)
    centre = 4 * 9 + 4
    ring1 = neighbours(f, centre)
    ring2 = set().union(*(neighbours(f, u) for u in ring1)) - ring1 - {centre}
    assert set(sp[centre, 7:].tolist()) == ring2


def test_spiral_boundary_vertices_are_padded_not_crashing():
    v, f = grid(6)
    n = len(v)
    sp = spiral_indices(v, f, steps=2, dilation=2)
    assert sp.shape[0] == n and sp.min() >= 0 and sp.max() == n  # n is the padding index
    corner = 0
    assert sp[corner, 0] == corner
    assert (sp[corner] == n).any(), "a corner's spiral must be padded"
    real = sp[corner][sp[corner] < n]
    assert len(set(real.tolist())) == len(real)
    # deterministic
    assert np.array_equal(sp, spiral_indices(v, f, steps=2, dilation=2))


def test_spiral_open_fan_marks_gap_and_nonmanifold_mesh_survives():
    v, f = grid(4)
    fans = ordered_fans(f, len(v))
    assert fans[0][-1] == GAP and GAP not in fans[5]  # corner open, interior closed
    # bow-tie (two triangles sharing one vertex) + an isolated vertex
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0], [5, 5, 5]], float)
    faces = np.array([[0, 1, 2], [0, 3, 4]])
    sp = spiral_indices(verts, faces, steps=2, dilation=1, length=6)
    assert sp[5, 0] == 5 and (sp[5, 1:] == 6).all()
    assert set(sp[0, 1:][sp[0, 1:] < 6].tolist()) == {1, 2, 3, 4}


# --------------------------------------------------------------------------- sampling
def linear(x: np.ndarray) -> np.ndarray:
    return x @ np.array([0.7, -1.3, 2.1]) + 4.0


def test_down_and_up_sampling_reproduce_a_linear_function():
    v, f = grid(16)
    h = build_hierarchy(v, f, factors=[4, 4], steps=[1], dilation=[1], min_vertices=8)
    assert h.num_levels == 3
    for i in range(h.num_levels - 1):
        fine, coarse = h.vertices[i].astype(np.float64), h.vertices[i + 1].astype(np.float64)
        down = h.down[i] @ linear(fine)
        assert np.allclose(down, linear(coarse), atol=1e-5)
        up = h.up[i] @ down
        kept = h.down[i].indices
        assert np.allclose(up[kept], linear(fine)[kept], atol=1e-4), "kept vertices must be reproduced exactly"
        # removed vertices get the function at their projection on the coarse surface (barycentric)
        proj = h.up[i] @ coarse
        assert np.allclose(up, linear(proj), atol=1e-4)
        assert np.allclose(np.asarray(h.up[i].sum(1)).ravel(), 1.0, atol=1e-5) and h.up[i].data.min() >= 0
        # on a plane the projection is the vertex itself wherever the coarse mesh covers it
        inside = np.linalg.norm(proj - fine, axis=1) < 1e-3
        assert inside.mean() > 0.6


def test_closest_barycentric_inside_and_outside():
    a, b, c = (np.array([[0.0, 0, 0]]), np.array([[1.0, 0, 0]]), np.array([[0.0, 1, 0]]))
    bary, d = closest_barycentric(np.array([[0.25, 0.25, 2.0]]), a, b, c)
    assert np.allclose(bary, [[0.5, 0.25, 0.25]]) and np.isclose(d[0], 4.0)
    bary, _ = closest_barycentric(np.array([[2.0, -1.0, 0.0]]), a, b, c)
    assert np.allclose(bary, [[0.0, 1.0, 0.0]])


def test_upsampling_without_coarse_faces_copies_nearest():
    fine = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]])
    u = upsampling_matrix(fine, fine[[0, 2]], np.zeros((0, 3), int), np.array([0, 2]))
    assert u.shape == (3, 2) and np.allclose(u.toarray().sum(1), 1)


def test_hierarchy_degrades_gracefully_on_small_meshes():
    ds = tiny_dataset()
    h = build_hierarchy(ds.neutral(ds.identities[0]), ds.topology.faces)
    assert 2 <= h.num_levels < 5 and h.sizes[0] == 576 and min(h.sizes) >= 12
    v, f = grid(4)
    assert build_hierarchy(v, f).num_levels == 1
    tri = build_hierarchy(np.eye(3), np.array([[0, 1, 2]]))
    assert tri.sizes == [3] and tri.spirals[0].shape[0] == 3
    kept, cf = decimate(*grid(10), factor=4)
    assert len(np.unique(kept)) == len(kept) and cf.max() < len(kept)


def test_hierarchy_is_cached_and_round_trips(tmp_path, monkeypatch):
    monkeypatch.setenv("FC4DFS_CACHE", str(tmp_path))
    v, f = grid(12)
    h1 = cached_hierarchy("topo", v, f)
    files = list((tmp_path / "mesh" / "topo").glob("hierarchy-*.npz"))
    assert len(files) == 1
    h2 = cached_hierarchy("topo", v, f)
    h3 = MeshHierarchy.from_arrays(h1.to_arrays())
    for other in (h2, h3):
        assert other.sizes == h1.sizes
        assert all(np.array_equal(a, b) for a, b in zip(h1.spirals, other.spirals))
        assert all((a != b).nnz == 0 for a, b in zip(h1.up, other.up))
    cached_hierarchy("topo", v + 1.0, f)  # another template, another entry
    assert len(list((tmp_path / "mesh" / "topo").glob("hierarchy-*.npz"))) == 2


# --------------------------------------------------------------------------- layers
@pytest.mark.parametrize("cin,cout", [(4, 6), (16, 3), (5, 5)])
def test_spiral_conv_matches_naive_reference_forward_and_backward(cin, cout):
    v, f = grid(7)
    sp = spiral_indices(v, f, steps=2, dilation=1)
    torch.manual_seed(0)
    fast = SpiralConv(cin, cout, sp).double()
    naive = NaiveSpiralConv(cin, cout, sp).double().load_from(fast)
    x = torch.randn(3, len(v), cin, dtype=torch.float64, requires_grad=True)
    y1 = fast(x)
    y1.square().sum().backward()
    gx1, gw1, gb1 = x.grad.clone(), fast.weight.grad.clone(), fast.bias.grad.clone()
    x.grad = None
    y2 = naive(x)
    y2.square().sum().backward()
    assert torch.allclose(y1, y2, atol=1e-10)
    assert torch.allclose(gx1, x.grad, atol=1e-10)
    assert torch.allclose(gw1, naive.conv.weight.grad.t(), atol=1e-9)
    assert torch.allclose(gb1, naive.conv.bias.grad, atol=1e-9)
    small = spiral_indices(*grid(3), steps=2, dilation=1)
    tiny = SpiralConv(cin, cout, small).double()
    assert torch.autograd.gradcheck(tiny, (torch.randn(2, 9, cin, dtype=torch.float64, requires_grad=True),))


@pytest.mark.parametrize("cin,cout", [(3, 5), (4, 6), (16, 3), (6, 8)])
def test_spiral_conv_float32_matches_naive_reference(cin, cout):
    """float32 runs other kernels (oneDNN products; inputs of < 4 channels padded to 16-byte rows)."""
    v, f = grid(7)
    sp = spiral_indices(v, f, steps=2, dilation=1)
    torch.manual_seed(0)
    fast = SpiralConv(cin, cout, sp)
    naive = NaiveSpiralConv(cin, cout, sp).double().load_from(fast)
    x = torch.randn(3, len(v), cin, requires_grad=True)
    y = fast(x)
    y.backward(torch.ones_like(y))
    xd = x.detach().double().requires_grad_()
    yd = naive(xd)
    yd.backward(torch.ones_like(yd))
    # float32 rounding of sums over S * C_in <= 144 products: 1e-5 of each quantity's scale (~100 ulps)
    for what, got, ref in (("output", y, yd), ("input gradient", x.grad, xd.grad),
                           ("weight gradient", fast.weight.grad, naive.conv.weight.grad.t()),
                           ("bias gradient", fast.bias.grad, naive.conv.bias.grad)):
        err = float((got.detach().double() - ref.detach()).abs().max())
        assert_below(err, 1e-5 * float(ref.detach().abs().max()), f"{cin}->{cout} {what}", inclusive=True)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_nn_linear_forward_and_backward(bias):
    torch.manual_seed(0)
    fast = Linear(12, 7, bias=bias)
    ref = torch.nn.Linear(12, 7, bias=bias).double()
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(2, 5, 12, requires_grad=True)
    y = fast(x)
    y.backward(torch.ones_like(y))
    xd = x.detach().double().requires_grad_()
    yd = ref(xd)
    yd.backward(torch.ones_like(yd))
    pairs = [("output", y, yd), ("input gradient", x.grad, xd.grad), ("weight gradient", fast.weight.grad, ref.weight.grad)]
    if bias:
        pairs.append(("bias gradient", fast.bias.grad, ref.bias.grad))
    assert y.shape == (2, 5, 7)
    for what, got, want in pairs:
        # float32 rounding of sums of <= 12 products: 1e-5 of each quantity's scale (~100 ulps)
        err = float((got.detach().double() - want.detach()).abs().max())
        assert_below(err, 1e-5 * float(want.detach().abs().max()), what, inclusive=True)


def test_spiral_conv_rejects_wrong_shapes():
    v, f = grid(4)
    conv = SpiralConv(3, 2, spiral_indices(v, f, 1, 1))
    with pytest.raises(ValueError, match="expects"):
        conv(torch.zeros(1, len(v) - 1, 3))
    with pytest.raises(ValueError, match="spiral indices"):
        SpiralConv(3, 2, np.full((4, 3), 9))


def test_resample_applies_the_sparse_matrix_with_gradient():
    v, f = grid(8)
    h = build_hierarchy(v, f, factors=[4], steps=[1], dilation=[1], min_vertices=8)
    up, down = Resample(h.up[0]).double(), Resample(h.down[0])
    assert down.selection and not up.selection
    x = torch.randn(2, h.sizes[1], 3, dtype=torch.float64, requires_grad=True)
    ref = torch.stack([torch.from_numpy(h.up[0].astype(np.float64) @ x[b].detach().numpy()) for b in range(2)])
    assert torch.allclose(up(x), ref)
    assert torch.autograd.gradcheck(up, (x,))
    y = torch.randn(2, h.sizes[0], 3)
    assert torch.equal(down(y), y[:, torch.as_tensor(h.down[0].indices)])


def test_fc4dfs_onednn_0_turns_the_onednn_product_off():
    """``FC4DFS_ONEDNN=0`` (read at import) makes :func:`product` torch's own; the default uses oneDNN
    where the build has it."""
    import subprocess
    import sys

    code = "import fc4dfs.zoo.products as p; print(p._LINEAR is None)"
    env = {**os.environ, "FC4DFS_ONEDNN": "0"}
    off = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert off.stdout.strip() == "True"
    env["FC4DFS_ONEDNN"] = "1"
    on = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert on.stdout.strip() == str(not torch.backends.mkldnn.is_available())
