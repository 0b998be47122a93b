"""The embedded ``synthetic`` dataset: contract, determinism, splits, landmarks, temporal
structure, identity dependence, non-linearity and the self-healing cache."""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from fc4dfs.datasets.synthetic import (SYNTHETIC_VERSION, SyntheticConfig, cache_key,
                                       load_synthetic)
from fc4dfs.datasets.synthetic import cache as syn_cache
from fc4dfs.datasets.synthetic.generate import make_identity, make_sequence
from fc4dfs.datasets.synthetic.template import RESOLUTIONS, build_template

SMALL = dict(resolution="small", identities=4, expressions=12)


@pytest.fixture(scope="module")
def small():
    return load_synthetic(**SMALL)


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FC4DFS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_registered_and_passes_the_conformance_kit():
    from fc4dfs.plugins import registry
    from fc4dfs.plugins.testing import check_dataset

    assert registry().load("dataset", "synthetic") is load_synthetic
    ds = load_synthetic(resolution="small", identities=8)
    check_dataset(ds)
    assert len(ds.labels) == 12 and ds.version == SYNTHETIC_VERSION


def test_sizes_of_each_resolution():
    sizes = {r: build_template(r).num_vertices for r in RESOLUTIONS}
    assert 300 <= sizes["small"] <= 800
    assert 1000 <= sizes["default"] <= 2000
    assert 4500 <= sizes["flame"] <= 5500


def test_same_seed_same_bytes_other_seed_other_identities(private_cache, tmp_path, monkeypatch):
    opts = dict(resolution="small", identities=4, expressions=2)
    a = load_synthetic(**opts)
    first = {n: _sha(a.cache_path / n) for n in (syn_cache.FRAMES, syn_cache.NEUTRALS)}
    monkeypatch.setenv("FC4DFS_CACHE", str(tmp_path / "other-cache"))
    b = load_synthetic(**opts)
    assert b.cache_path != a.cache_path
    assert {n: _sha(b.cache_path / n) for n in first} == first
    assert a.fingerprint == b.fingerprint
    c = load_synthetic(seed=1, **opts)
    assert c.fingerprint != a.fingerprint
    for ident in a.identities:
        assert a.identity_params[ident] != c.identity_params[ident]
        assert np.abs(a.neutral(ident) - c.neutral(ident)).max() > 1.0


def test_identity_split_and_folds(small):
    train, test = small.generator_split()
    assert not set(train) & set(test) and set(train) | set(test) == set(small.identities)
    assert train == small.identities[:3] and test == small.identities[3:]
    tests = [t for _, t in small.folds(4)]
    flat = [i for t in tests for i in t]
    assert sorted(flat) == sorted(small.identities) and len(flat) == len(set(flat))


def _distance_to_surface(points: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Distance of each point to the nearest triangle it projects into (inf if none)."""
    a, b, c = (verts[faces[:, k]] for k in range(3))
    n = np.cross(b - a, c - a)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    out = np.full(len(points), np.inf)
    for i, p in enumerate(points):
        d = ((p - a) * n).sum(1)
        q = p - d[:, None] * n
        inside = np.ones(len(faces), dtype=bool)
        for u, v in ((a, b), (b, c), (c, a)):
            inside &= (np.cross(v - u, q - u) * n).sum(1) >= -1e-3
        if inside.any():
            out[i] = np.abs(d[inside]).min()
    return out


def test_landmarks_lie_on_the_surface_and_follow_the_ibug_layout(small):
    faces = small.topology.faces
    for s in small.sequences[::17]:
        for f in (0, s.length // 2, s.length - 1):
            verts = np.asarray(s.frames[f], dtype=np.float64)
            lm = small.topology.landmarks(verts).astype(np.float64)
            dist = _distance_to_surface(lm, verts, faces)
            assert dist.max() < 1e-3, f"{s.identity}/{s.label} frame {f}: landmark {dist.max():.3g} mm off"
    lm = small.topology.landmarks(small.neutral(small.identities[0]))
    x, y, z = lm[:, 0], lm[:, 1], lm[:, 2]
    assert np.argmin(y[:17]) == 8                         # chin is the lowest jaw point
    assert x[0] < x[8] < x[16]                            # jaw runs right-to-left of the subject
    assert np.argmax(z) == 30                             # the nose tip sticks out most
    assert y[19] > y[37] > y[41] and y[24] > y[44] > y[46]  # brows above upper lids above lower lids
    assert x[36] < x[39] < x[42] < x[45]                  # eye corners in order
    assert y[27] > y[30] > y[33] > y[51] > y[57] > y[8]   # nose above mouth above chin
    assert x[48] < x[51] < x[54] and x[48] < x[62] < x[54]


def test_sequences_start_neutral_and_n2e2n_also_end_neutral(small):
    kinds = {s.kind for s in small.sequences}
    assert kinds == {"n2e", "n2e2n"}
    per_label = {lab: {s.kind for s in small.sequences if s.label == lab} for lab in small.labels}
    assert all(len(k) == 1 for k in per_label.values()), "a label implies its sequence kind"
    for s in small.sequences:
        neutral = small.neutral(s.identity)
        assert np.array_equal(s.frames[0], neutral), f"{s.identity}/{s.label} frame 0"
        last = float(np.abs(s.frames[-1] - neutral).max())
        if s.kind == "n2e2n":
            assert last == 0.0, f"{s.identity}/{s.label} n2e2n ends {last:.3g} mm from neutral"
        else:
            assert last > 1.0, f"{s.identity}/{s.label} n2e ends at neutral"


def test_temporal_structure_varies_length_fps_and_apex(small):
    lengths = {s.length for s in small.sequences}
    fps = {s.fps for s in small.sequences}
    assert len(lengths) > 10 and len(fps) == 4
    for s in small.sequences:
        motion = np.linalg.norm(s.landmarks - s.landmarks[:1], axis=-1).mean(-1)
        peak = int(np.argmax(motion))
        timing = s.meta["timing"]
        # the motion peaks around the planned apex, measured as a fraction of the duration
        if s.kind == "n2e2n":
            lo = timing["apex"] - 0.1
            hi = timing["release"] + 0.15
            assert lo <= peak / (s.length - 1) <= hi, (s.identity, s.label, peak, s.length, timing)
        assert motion[0] == 0.0 and motion.max() > 0.5


def _similarity_residual(a: np.ndarray, b: np.ndarray) -> float:
    """Relative residual of the best s*R*a ~ b (rotation + scale) over point sets [N, 3]."""
    h = a.T @ b
    u, sv, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rot = vt.T @ np.diag([1, 1, d]) @ u.T
    scale = (sv * [1, 1, d]).sum() / (a * a).sum()
    return float(np.linalg.norm(scale * a @ rot.T - b) / np.linalg.norm(b))


def test_same_label_on_two_identities_differs_beyond_rotation_and_scale(small):
    a, b = small.identities[:2]
    residuals = []
    for lab in small.labels:
        disp = []
        for ident in (a, b):
            s = next(q for q in small.sequences if q.identity == ident and q.label == lab)
            frames = np.asarray(s.frames, dtype=np.float64)
            motion = np.linalg.norm(frames - frames[:1], axis=-1).mean(-1)
            disp.append(frames[int(np.argmax(motion))] - frames[0])
        residuals.append(_similarity_residual(disp[0], disp[1]))
    assert min(residuals) > 0.04 and np.median(residuals) > 0.15, residuals


def test_motion_is_not_linear_in_the_expression_amount(small):
    s = next(q for q in small.sequences if q.label == "mouth_open")
    disp = (np.asarray(s.frames, dtype=np.float64) - s.frames[0]).reshape(s.length, -1)
    sv = np.linalg.svd(disp, compute_uv=False)
    assert sv[1] / sv[0] > 0.01, "jaw opening is a rotation: its frames are not one scaled field"


def test_options_from_strings_labels_kinds_and_more_expressions():
    ds = load_synthetic(resolution="small", identities="4", expressions="2", kinds="n2e",
                        repetitions="1", fps="25")
    assert {s.kind for s in ds.sequences} == {"n2e"} and {s.fps for s in ds.sequences} == {25.0}
    assert len(ds.sequences) == 4 * 2
    ds = load_synthetic(resolution="small", identities=4, labels="eyebrow,mouth_open", repetitions=1)
    assert ds.labels == ["eyebrow", "mouth_open"]
    cfg = SyntheticConfig(expressions=70)
    assert len(set(cfg.label_names)) == 70 and cfg.label_names[:12][0] == "bareteeth"
    with pytest.raises(ValueError, match="identities"):
        load_synthetic(identities=3)
    with pytest.raises(ValueError, match="resolution"):
        load_synthetic(resolution="huge")
    with pytest.raises(KeyError, match="no_such"):
        load_synthetic(labels="no_such")


def test_identities_do_not_depend_on_how_many_are_generated():
    small_cfg = SyntheticConfig(resolution="small", identities=4)
    big_cfg = SyntheticConfig(resolution="small", identities=9)
    a, b = make_identity(small_cfg, 2), make_identity(big_cfg, 2)
    assert np.array_equal(a.face.neutral, b.face.neutral)
    sa, sb = make_sequence(small_cfg, a, 2, "eyebrow", 1), make_sequence(big_cfg, b, 2, "eyebrow", 1)
    assert np.array_equal(sa.frames, sb.frames)


def test_cache_key_includes_the_code_version(monkeypatch):
    import fc4dfs.datasets.synthetic as syn

    cfg = SyntheticConfig(resolution="small", identities=4)
    before = cache_key(cfg)
    monkeypatch.setattr(syn, "SYNTHETIC_VERSION", "test-bump")
    assert cache_key(cfg) != before


@pytest.mark.parametrize("damage", ["flip", "truncate", "manifest", "missing", "stale"])
def test_a_damaged_cache_is_detected_and_rebuilt(private_cache, damage):
    opts = dict(resolution="small", identities=4, expressions=2, repetitions=1)
    ds = load_synthetic(**opts)
    path = ds.cache_path
    good = _sha(path / syn_cache.FRAMES)
    expected = np.array(ds.sequences[-1].frames)
    del ds
    fp = path / syn_cache.FRAMES
    if damage == "flip":
        with open(fp, "r+b") as f:
            f.seek(os.path.getsize(fp) // 2)
            f.write(b"\xff\xfe\xfd\xfc")
    elif damage == "truncate":
        with open(fp, "r+b") as f:
            f.truncate(os.path.getsize(fp) - 12)
    elif damage == "manifest":
        (path / syn_cache.MANIFEST).write_text('{"format": 1, "files": ')
    elif damage == "missing":
        os.remove(path / syn_cache.NEUTRALS)
    else:  # built by code that made another topology
        import json

        manifest = json.loads((path / syn_cache.MANIFEST).read_text())
        manifest["topology"] = "0" * 16
        (path / syn_cache.MANIFEST).write_text(json.dumps(manifest))
    if damage != "stale":
        with pytest.raises(syn_cache.CacheCorruptError):
            syn_cache.verify(path, syn_cache.read_manifest(path), "full")
    again = load_synthetic(**opts)
    assert _sha(again.cache_path / syn_cache.FRAMES) == good
    assert np.array_equal(again.sequences[-1].frames, expected)
    syn_cache.verify(again.cache_path, syn_cache.read_manifest(again.cache_path), "full")
    assert not [p for p in private_cache.joinpath("synthetic").iterdir() if p.name.startswith((".build", ".trash"))]


@pytest.mark.parametrize("reseal", [False, True])
def test_a_manifest_whose_sequence_spans_its_neighbours_is_rebuilt_and_said(private_cache, capsys, reseal):
    """A damaged manifest.json (a sequence grown over the next one's frames) is never accepted: its own
    SHA-256 fails, and a re-sealed one fails the layout check; the cache is rebuilt with one line."""
    import json

    from fc4dfs.datasets.storage import sealed

    opts = dict(resolution="small", identities=4, expressions=2, repetitions=1)
    ds = load_synthetic(**opts)
    path, first = ds.cache_path, np.array(ds.sequences[0].frames)
    manifest = json.loads((path / syn_cache.MANIFEST).read_text())
    manifest["sequences"][0]["length"] += 3
    (path / syn_cache.MANIFEST).write_text(json.dumps(sealed(manifest) if reseal else manifest))
    with pytest.raises(syn_cache.CacheCorruptError, match="starts at frame" if reseal else "SHA-256"):
        syn_cache.read_manifest(path)
    capsys.readouterr()
    again = load_synthetic(**opts)
    err = capsys.readouterr().err
    assert np.array_equal(np.asarray(again.sequences[0].frames), first)
    lines = [line for line in err.splitlines() if "rebuilding the synthetic cache" in line]
    assert len(lines) == 1 and str(path / syn_cache.MANIFEST) in lines[0], err
    syn_cache.read_manifest(again.cache_path)


def test_folders_of_killed_builds_are_removed_but_not_a_live_builders(private_cache, capsys):
    from filelock import FileLock

    load_synthetic(resolution="small", identities=4, expressions=2, repetitions=1)
    base = private_cache / "synthetic"
    dead = [base / ".build-small-deadkey-4242-0123abcd", base / ".trash-small-gone-1a2b3c4d"]
    live = base / ".build-small-livekey-4343-89abcdef"
    for d in dead + [live]:
        d.mkdir()
        (d / "frames.f32").write_bytes(bytes(64))
    with FileLock(syn_cache.lock_path("small-livekey")):  # a concurrent builder of another key holds its lock
        load_synthetic(resolution="small", identities=4, expressions=3, repetitions=1)  # a new key: a build
        assert live.is_dir() and not any(d.exists() for d in dead)
    assert "removed 2 folder(s) left by interrupted synthetic cache builds" in capsys.readouterr().err


def test_frames_are_read_back_memory_mapped(small):
    assert isinstance(small.sequences[0].frames, np.memmap)
    assert small.sequences[0].frames.dtype == np.float32


def test_cli_dataset_show_and_info(tmp_path, capsys):
    from fc4dfs.benchmark.cli import main

    out = tmp_path / "show.png"
    rc = main(["dataset", "show", "synthetic", "-o", "resolution=small", "-o", "identities=4",
               "-o", "expressions=3", "--label", "eyebrow", "--identity", "synth001", "--out", str(out),
               "--frames", "3", "--identities", "2", "--no-gallery"])
    assert rc == 0 and out.stat().st_size > 20_000
    assert str(out.resolve()) in capsys.readouterr().out
    assert main(["dataset", "info", "synthetic", "-o", "resolution=small", "-o", "identities=4",
                 "-o", "expressions=3"]) == 0
    assert "synthetic" in capsys.readouterr().out
    assert main(["dataset", "show", "synthetic", "-o", "resolution=small", "-o", "identities=4",
                 "--label", "nope"]) == 2
    assert main(["dataset", "info", "synthetic", "-o", "identities=2"]) == 2
    assert main(["dataset", "info", "synthetic", "-o", "colour=blue"]) == 2
    assert "nope" in capsys.readouterr().err


def test_the_dataset_carries_the_papers_reasons_for_their_orderings():
    """Closed-form stand-ins: identity awareness helps decoders, PCA fails on unseen identities,
    and knowing a frame's relative position helps generators (see the diagnostics module).
    Runs in a child process with a single BLAS thread (a busy BLAS pool crawls)."""
    import json
    import subprocess
    import sys

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "fc4dfs.datasets.synthetic.diagnostics", "identities=8",
                          "--stride", "3", "--vertex-stride", "4", "--pca", "40", "--lengths", "native,20",
                          "--json"], env=env, capture_output=True, text=True, check=True)
    res = json.loads(out.stdout)
    dec, gen = res["decoder"], res["generator"]
    assert dec["pca_fit"] > dec["shared_linear"] > 3 * dec["per_identity"], dec
    assert dec["shared_linear"] < 0.5 * dec["no_motion"], dec
    assert gen["20"]["relative"] < gen["20"]["seconds"] < gen["20"]["index"] < gen["20"]["zero"], gen
    assert gen["native"]["relative"] < 0.85 * gen["native"]["index"], gen
