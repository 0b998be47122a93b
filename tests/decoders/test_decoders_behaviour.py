"""Decoders resume, refuse other topologies, validate options; PCA solves landmarks exactly."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fc4dfs.plugins.contracts import Budget
from fc4dfs.plugins.errors import CheckpointMismatchError, ComponentError
from fc4dfs.plugins.testing import other_topology
from fc4dfs.datasets.fixtures import tiny_dataset
from fc4dfs.zoo.decoders.common import decode_pieces, normalised_inputs, run_pieces
from fc4dfs.zoo.decoders.miadnet import MIADNetDecoder
from fc4dfs.zoo.decoders.neural3dmm import Neural3DMMDecoder
from fc4dfs.zoo.decoders.pca import PCADecoder
from fc4dfs.zoo.decoders.s2d import S2DDecoder
from decoders_fixtures import errors, one_sequence
from limits import assert_below


def test_pca_reproduces_training_frames_from_their_landmarks():
    ds = one_sequence()
    dec = PCADecoder(n_components=8, regularization=1e-9)
    dec.fit(ds, Budget("smoke"), progress=False)
    err, motion = errors(dec, ds)
    assert_below(err, 1e-2 * motion, f"pca error (limit 0.01 x motion {motion:.3f} mm)", " mm")


def test_pca_selects_lambda_on_held_out_identities():
    ds = tiny_dataset()
    dec = PCADecoder()
    rep = dec.fit(ds.subset(ds.identities[:6]), Budget("smoke"), progress=False)
    assert rep["lambda_validation_mm"] and rep["lambda"] == pytest.approx(
        float(min(rep["lambda_validation_mm"], key=rep["lambda_validation_mm"].get)))
    assert 0 < rep["components"] <= 220


def test_training_resumes_from_workdir(tmp_path):
    ds = one_sequence()
    budget = Budget("smoke", {"epochs": 2})
    first = S2DDecoder()
    first.fit(ds, budget, seed=0, workdir=tmp_path, progress=False)
    assert list(tmp_path.glob("*train_state.pt"))
    again = S2DDecoder()
    rep = again.fit(ds, budget, seed=0, workdir=tmp_path, progress=False)
    assert rep["resumed_from"] == 2
    mesh = ds.neutral(ds.identities[0])[None]
    lm = ds.sequences[0].landmarks[None]
    nlm = ds.topology.landmarks(mesh)
    assert np.allclose(first.decode(mesh, nlm, lm), again.decode(mesh, nlm, lm), atol=1e-5)


def test_checkpoint_for_another_topology_is_refused(tmp_path):
    ds = one_sequence()
    dec = Neural3DMMDecoder()
    dec.fit(ds, Budget("smoke", {"epochs": 1}), progress=False)
    path = dec.save(tmp_path / "n3dmm.safetensors")
    with pytest.raises(CheckpointMismatchError, match="topology"):
        Neural3DMMDecoder.load(path, other_topology(ds.topology))
    with pytest.raises(CheckpointMismatchError):
        S2DDecoder.load(path, ds.topology)


def test_miadnet_options_and_ablations():
    with pytest.raises(ComponentError, match="identity_mesh"):
        MIADNetDecoder(identity_mesh="yes")
    with pytest.raises(ComponentError, match="no option"):
        MIADNetDecoder(dropout=0.1)
    assert MIADNetDecoder().options["landmark_decomposition"] is True
    assert MIADNetDecoder().options["identity_mesh"] is True
    ds = one_sequence()
    params = {}
    variants = {"full": {}, "lm-n": {"identity_mesh": False}, "mesh-n": {"landmark_decomposition": False}}
    for key, opts in variants.items():
        dec = MIADNetDecoder(**opts)
        dec.fit(ds, Budget("smoke", {"epochs": 1}), progress=False)
        names = {k.split(".")[0] for k, _ in dec.net.named_parameters()}
        params[key] = names
    assert {"encoder", "mlp_m", "mlp_n", "lam"} <= params["full"]
    assert "encoder" not in params["lm-n"] and "mlp_n" in params["lm-n"]
    assert "mlp_n" not in params["mesh-n"] and "fc" in params["mesh-n"] and "encoder" in params["mesh-n"]


def test_decode_refuses_bad_inputs():
    ds = one_sequence()
    dec = S2DDecoder()
    with pytest.raises(ComponentError, match="not trained"):
        dec.decode(np.zeros((1, 576, 3), np.float32), np.zeros((1, 68, 3), np.float32),
                   np.zeros((1, 2, 68, 3), np.float32))
    dec.fit(ds, Budget("smoke", {"epochs": 1}), progress=False)
    mesh = ds.neutral(ds.identities[0])[None]
    with pytest.raises(ComponentError, match="batch sizes differ"):
        dec.decode(mesh, ds.topology.landmarks(mesh), np.zeros((2, 3, 68, 3), np.float32))


def test_miadnet_attention_modes_train_and_decode():
    ds = one_sequence()
    mesh = ds.neutral(ds.identities[0])[None]
    lm = ds.sequences[0].landmarks[None]
    for opts, modes in (({"fine_attention": "local", "attention_max_vertices": 0}, {"local"}),
                        ({"attention_max_vertices": 10**6}, {"global"}),
                        ({"attention_max_vertices": 0}, {"skip"})):
        dec = MIADNetDecoder(**opts)
        dec.fit(ds, Budget("smoke", {"epochs": 1}), progress=False)
        assert set(dec.net.modes) == modes
        out = dec.decode(mesh, ds.topology.landmarks(mesh), lm)
        assert out.shape == lm.shape[:2] + mesh.shape[1:] and np.isfinite(out).all()
    with pytest.raises(ComponentError, match="fine_attention"):
        MIADNetDecoder(fine_attention="everywhere")


@pytest.mark.parametrize("batch,frames,chunk,workers", [(1, 30, 32, 2), (4, 32, 16, 2), (3, 100, 32, 2),
                                                        (2, 1, 64, 2), (1, 1, 64, 2), (5, 9, 4, 3), (2, 7, 3, 1)])
def test_decode_pieces_cover_every_frame_once_in_equal_shares(batch, frames, chunk, workers):
    pieces = decode_pieces(batch, frames, chunk, workers)
    covered = np.zeros((batch, frames), dtype=int)
    for i, s, e in pieces:
        assert 0 < e - s <= chunk, (i, s, e)
        covered[i, s:e] += 1
    assert (covered == 1).all()
    sizes = [e - s for _, s, e in pieces]
    assert max(sizes) - min(sizes) <= 1, sizes
    if frames >= workers // math.gcd(batch, workers):  # enough frames to give every worker a share
        assert len(pieces) % workers == 0, (len(pieces), workers)


def test_run_pieces_runs_each_piece_on_one_intra_op_thread_and_restores_the_count():
    torch.set_num_threads(2)
    seen: list[tuple[int, int]] = []
    run_pieces(lambda p: seen.append((p, torch.get_num_threads())), range(5), 2)
    assert sorted(seen) == [(p, 1) for p in range(5)]
    assert torch.get_num_threads() == 2

    def fail(p: int) -> None:
        if p == 3:
            raise ValueError("piece 3")
    with pytest.raises(ValueError, match="piece 3"):
        run_pieces(fail, range(6), 2)
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("grad", [False, True])
def test_run_pieces_workers_keep_the_caller_s_grad_mode(grad: bool):
    torch.set_num_threads(2)
    seen: list[bool] = []
    with torch.set_grad_enabled(grad):
        run_pieces(lambda p: seen.append(torch.is_grad_enabled()), range(4), 2)
    assert seen == [grad] * 4


@pytest.mark.parametrize("name", ["miadnet", "s2d"])
def test_decode_on_worker_threads_equals_one_forward_pass_per_sequence(name):
    """Pieces on 2 worker threads (and on 1) give what one forward pass over each whole sequence gives."""
    ds = tiny_dataset()
    dec = {"miadnet": MIADNetDecoder, "s2d": S2DDecoder}[name]()
    dec.fit(ds, Budget("smoke", {"epochs": 1, "max_frames": 32}), progress=False)
    torch.manual_seed(0)
    with torch.no_grad():  # non-zero identity branches (they start at zero)
        for p in dec.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    seqs = [next(s for s in ds.sequences if s.identity == i) for i in ds.identities[:3]]
    t = min(s.length for s in seqs)
    mesh = np.stack([ds.neutral(s.identity) for s in seqs])
    nlm = ds.topology.landmarks(mesh)
    lms = np.stack([s.landmarks[:t] for s in seqs])
    ref = []
    with torch.no_grad():
        for i in range(len(seqs)):
            m0_mm, l0_mm = torch.tensor(mesh[i:i + 1]), torch.tensor(nlm[i:i + 1])
            ident = torch.zeros(t, dtype=torch.long)
            dl, l0, m0 = normalised_inputs(dec.norm, torch.tensor(lms[i]), l0_mm, m0_mm, ident)
            ref.append(dec._to_mesh(dec.net(dl, l0, m0, ident), m0_mm).numpy())
    ref = np.stack(ref)
    dec.decode_chunk = 6  # several pieces per sequence
    for threads in (2, 1):
        torch.set_num_threads(threads)
        out = dec.decode(mesh, nlm, lms)
        assert torch.get_num_threads() == threads
        # float32 products summed in another order: 1e-5 of the displacements' scale (~100 float32 ulps)
        # plus 4 ulps of the coordinates the displacements are added to
        scale = float(np.abs(ref - mesh[:, None]).max())
        limit = 1e-5 * scale + 4 * float(np.spacing(np.abs(ref).max()))
        assert_below(float(np.abs(out - ref).max()), limit, f"{name} decode at {threads} thread(s)", " mm",
                     inclusive=True)


def test_miadnet_one_identity_batch_equals_that_identity_given_twice():
    """One identity takes shortcuts (skip features broadcast, all frames' queries in one attention
    sequence); two copies of it take the general per-frame path and must give the same output."""
    ds = one_sequence()
    dec = MIADNetDecoder(attention_max_vertices=200)  # global attention on the coarse levels, skip on the rest
    dec.fit(ds, Budget("smoke", {"epochs": 1}), progress=False)
    assert {"global", "skip"} <= set(dec.net.modes)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in dec.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
        seq = ds.sequences[0]
        mesh = torch.tensor(ds.neutral(seq.identity)[None])
        nlm = torch.tensor(ds.topology.landmarks(mesh.numpy()))
        lm = torch.tensor(np.asarray(seq.landmarks[:6], np.float32))
        one = torch.zeros(6, dtype=torch.long)
        dl, l0, m0 = normalised_inputs(dec.norm, lm, nlm, mesh, one)
        y1 = dec.net(dl, l0, m0, one)
        y2 = dec.net(dl, l0.repeat(2, 1, 1), m0.repeat(2, 1, 1), torch.arange(6) % 2)
    # the same float32 arithmetic in another order: 1e-5 of the output's scale (~100 ulps)
    assert_below(float((y1 - y2).abs().max()), 1e-5 * float(y1.abs().max()), "one identity vs two copies",
                 inclusive=True)
