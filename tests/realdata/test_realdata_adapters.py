"""CoMA, Aligned CoMA and Florence4D adapters over fixtures in the real on-disk layouts."""
from __future__ import annotations

import argparse
import json
import os
import shutil

import numpy as np
import pytest

from fc4dfs.datasets import realcache, realdata
from fc4dfs.datasets.base import TopologyMismatchError
from fc4dfs.datasets.coma import load_coma, load_coma_aligned
from fc4dfs.datasets.fixtures import write_coma_fixture, write_florence4d_fixture
from fc4dfs.datasets.florence4d import load_florence4d
from fc4dfs.datasets.landmarks import save_landmark_embedding
from fc4dfs.datasets.ply import read_ply, write_ply
from fc4dfs.datasets.realcache import RealDataError, natural_key, open_store
from fc4dfs.plugins.testing import check_dataset

ENV = ("FC4DFS_COMA_ROOT", "FC4DFS_FLORENCE4D_ROOT", "FC4DFS_FLAME_LANDMARKS")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("FC4DFS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FC4DFS_PROGRESS", "0")
    for k in ENV:
        monkeypatch.delenv(k, raising=False)


@pytest.fixture(scope="module")
def coma_fx(tmp_path_factory):
    return write_coma_fixture(tmp_path_factory.mktemp("coma"), gaps=True)


@pytest.fixture(scope="module")
def florence_fx(tmp_path_factory):
    return write_florence4d_fixture(tmp_path_factory.mktemp("florence"))


@pytest.fixture
def small_fx(tmp_path):
    """A fixture of one expression per subject, written per test (tests here damage it)."""
    return write_coma_fixture(tmp_path / "small", labels=("mouth_open",), encoding="binary_little_endian")


def _cache_dirs(root) -> list:
    return [p.parent for p in root.rglob("faces.npy")]


def _valid_manifest(root) -> dict:
    (valid,) = [d for d in _cache_dirs(root) if open_store(d) is not None]
    return json.loads((valid / "manifest.json").read_text())


# --------------------------------------------------------------------------- contract and content
def test_conformance_kit_passes_on_all_three(coma_fx, florence_fx):
    for ds in (load_coma(root=coma_fx.root, landmarks=coma_fx.landmarks),
               load_coma_aligned(root=coma_fx.root, landmarks=coma_fx.landmarks),
               load_florence4d(root=florence_fx.root, landmarks=florence_fx.landmarks)):
        report = check_dataset(ds)
        assert not report.failed and len(report.passed) >= 9, report.summary()


def test_frames_are_millimetres_in_capture_order(coma_fx, florence_fx):
    for fx, ds, fps in ((coma_fx, load_coma(root=coma_fx.root, landmarks=coma_fx.landmarks), 60.0),
                        (florence_fx, load_florence4d(root=florence_fx.root, landmarks=florence_fx.landmarks), 25.0)):
        assert ds.identities == fx.identities
        assert len(ds.sequences) == len(fx.frames)
        for s in ds.sequences:
            truth = fx.frames[(s.identity, s.label)]
            assert s.frames.dtype == np.float32 and not s.frames.flags.owndata and not s.frames.flags.writeable
            assert isinstance(s.frames.base, np.memmap) or isinstance(s.frames.base.base, np.memmap)
            assert s.frames.shape == truth.shape and s.kind == "n2e2n" and s.fps == fps
            # files hold metres with 6 significant digits: well under a micrometre after conversion
            np.testing.assert_allclose(np.asarray(s.frames), truth, atol=2e-3)
            numbers = fx.frame_numbers[(s.identity, s.label)]
            assert s.meta["frames"] == [numbers[0], numbers[-1]]
    # Florence numbers its frames without padding: _10 must follow _9, not _1
    seq = load_florence4d(root=florence_fx.root, landmarks=florence_fx.landmarks).sequences[0]
    assert seq.length >= 12
    np.testing.assert_allclose(np.asarray(seq.frames[9]), florence_fx.frames[(seq.identity, seq.label)][9], atol=1e-3)


def test_natural_sort_key():
    names = ["x_10.ply", "x_2.ply", "X_1.ply", "x_1a.ply", "x.000003.ply", "x.000020.ply"]
    assert sorted(names, key=natural_key) == ["x.000003.ply", "x.000020.ply", "X_1.ply", "x_1a.ply", "x_2.ply",
                                              "x_10.ply"]
    assert realcache.frame_number("bareteeth.000012.ply", 0) == 12
    assert realcache.frame_number("Angry_7.ply", 0) == 7 and realcache.frame_number("a.ply", 3) == 3


def test_units_option_and_gaps(coma_fx, tmp_path):
    scale = {"mm": 1000.0, "cm": 100.0}
    for units, factor in scale.items():  # the same folder written in mm and in cm reads the same with units=...
        copy = tmp_path / units
        for src in coma_fx.root.rglob("*.ply"):
            mesh = read_ply(src)
            (copy / src.parent.relative_to(coma_fx.root)).mkdir(parents=True, exist_ok=True)
            write_ply(copy / src.relative_to(coma_fx.root), mesh.vertices.astype(np.float64) * factor, mesh.faces)
        ds = load_coma(root=copy, landmarks=coma_fx.landmarks, units=units)
        s = ds.sequences[0]
        np.testing.assert_allclose(np.asarray(s.frames), coma_fx.frames[(s.identity, s.label)], atol=2e-3)
    assert any(s.meta["gaps"] == 1 for s in ds.sequences) and any(s.meta["gaps"] == 0 for s in ds.sequences)
    with pytest.raises(RealDataError, match="units must be one of"):
        load_coma(root=coma_fx.root, landmarks=coma_fx.landmarks, units="inch")


def test_wrong_units_stop_every_adapter_before_any_build(coma_fx, florence_fx, tmp_path):
    """A folder read in the wrong units is an error naming the units that fit, in every real adapter
    (one shared check), raised before a store is built."""
    cases = [(load_coma, coma_fx, "mm"), (load_coma_aligned, coma_fx, "cm"), (load_florence4d, florence_fx, "mm")]
    for load, fx, units in cases:
        with pytest.raises(RealDataError) as info:
            load(root=fx.root, landmarks=fx.landmarks, units=units, cache_dir=str(tmp_path / "c"))
        message = str(info.value)
        assert "not the size of a face" in message and message.endswith("set the dataset option units=m "
                                                                         "(--dataset-opt units=m)"), message
        assert not _cache_dirs(tmp_path / "c"), load  # stopped before the build wrote anything
    # the fixture's face (~180 mm) is inside the plausible range, and 10x either way is outside it
    v = np.asarray(load_coma(root=coma_fx.root, landmarks=coma_fx.landmarks).sequences[0].frames[0])
    extent = float(np.linalg.norm(v.max(0) - v.min(0)))
    lo, hi = realdata.FACE_EXTENT_MM
    assert lo < extent < hi and extent / 10 < lo and extent * 10 > hi, (extent, lo, hi)
    with pytest.raises(RealDataError, match="units=mm"):
        realdata.check_face_size(v * 1000.0, "m", "x.ply")  # mm files read as metres


# --------------------------------------------------------------------------- configuration errors
def test_missing_root_says_where_to_get_the_data(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_coma()
    msg = str(e.value)
    assert "https://coma.is.tue.mpg.de" in msg and "--coma-root" in msg and "FC4DFS_COMA_ROOT" in msg
    with pytest.raises(FileNotFoundError, match="request form.*--florence-root.*FC4DFS_FLORENCE4D_ROOT"):
        load_florence4d()
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'absent'} does not exist"):
        load_coma_aligned(root=tmp_path / "absent")
    (tmp_path / "flat").mkdir()
    write_ply(tmp_path / "flat" / "a.ply", np.zeros((3, 3)), [[0, 1, 2]])
    save_landmark_embedding(tmp_path / "e.npz", [0], [[1, 0, 0]])
    with pytest.raises(RealDataError, match="no PLY files found under .*flat in the expected layout"):
        load_coma(root=tmp_path / "flat", landmarks=tmp_path / "e.npz")


def test_root_and_landmarks_from_environment(coma_fx, monkeypatch):
    with pytest.raises(RealDataError, match="--landmarks FILE.*FC4DFS_FLAME_LANDMARKS"):
        load_coma(root=coma_fx.root)
    monkeypatch.setenv("FC4DFS_COMA_ROOT", str(coma_fx.root))
    monkeypatch.setenv("FC4DFS_FLAME_LANDMARKS", str(coma_fx.landmarks))
    assert len(load_coma().identities) == 4


def test_embedding_for_another_mesh_is_refused(coma_fx, tmp_path):
    save_landmark_embedding(tmp_path / "flame.npz", np.arange(9000, 9068), np.full((68, 3), 1 / 3))
    with pytest.raises(TopologyMismatchError, match="flame.npz names face 9067 but the dataset's topology has 1058"):
        load_coma(root=coma_fx.root, landmarks=tmp_path / "flame.npz")


# --------------------------------------------------------------------------- bad files
def _one_file(fx, k: int = 5):
    key = next(iter(fx.files))
    return key, fx.files[key][k]


def _assert_no_valid_cache(tmp_path):
    for d in _cache_dirs(tmp_path / "cache"):
        assert open_store(d) is None and not (d / realcache.VALID).exists()


@pytest.mark.parametrize("skip_bad", [False, True])
def test_other_vertex_count_or_face_list_names_the_file(small_fx, tmp_path, skip_bad):
    key, path = _one_file(small_fx)
    v = small_fx.frames[key][5] / 1000.0
    write_ply(path, v[:-1], small_fx.faces[(small_fx.faces < len(v) - 1).all(1)])
    with pytest.raises(RealDataError, match=f"{path}: has {small_fx.num_vertices - 1} vertices"):
        load_coma(root=small_fx.root, landmarks=small_fx.landmarks, skip_bad=skip_bad)
    faces = small_fx.faces.copy()
    faces[[0, 1]] = faces[[1, 0]]
    write_ply(path, v, faces)
    with pytest.raises(RealDataError, match=f"{path}: its face list differs"):
        load_coma(root=small_fx.root, landmarks=small_fx.landmarks, skip_bad=skip_bad)
    _assert_no_valid_cache(tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "not_ply", "nan"])
def test_corrupt_file_stops_or_is_skipped_and_listed(small_fx, tmp_path, damage):
    key, path = _one_file(small_fx)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
        reason = "truncated PLY file"
    elif damage == "not_ply":
        path.write_bytes(b"\x89PNG\r\n\x1a\n not a mesh")
        reason = "not a PLY file"
    else:
        v = small_fx.frames[key][5] / 1000.0
        v[17] = np.nan
        write_ply(path, v, small_fx.faces)
        reason = "NaN or Inf"
    with pytest.raises(RealDataError, match=f"{path}.*{reason}.*--skip-bad"):
        load_coma(root=small_fx.root, landmarks=small_fx.landmarks)
    _assert_no_valid_cache(tmp_path)
    ds = load_coma(root=small_fx.root, landmarks=small_fx.landmarks, skip_bad=True)
    seq = next(s for s in ds.sequences if (s.identity, s.label) == key)
    truth = np.delete(small_fx.frames[key], 5, axis=0)
    np.testing.assert_allclose(np.asarray(seq.frames), truth, atol=1e-3)
    manifest = _valid_manifest(tmp_path / "cache")
    assert [b["file"] for b in manifest["bad_files"]] == [f"{key[0]}/{key[1]}/{path.name}"]
    assert reason in manifest["bad_files"][0]["reason"]


def test_first_file_bad_takes_topology_from_the_next(small_fx):
    key = next(iter(small_fx.files))
    small_fx.files[key][0].write_bytes(b"ply\nformat ascii 1.0\n")
    ds = load_coma(root=small_fx.root, landmarks=small_fx.landmarks, skip_bad=True)
    assert ds.topology.num_vertices == small_fx.num_vertices and len(ds.identities) == 4


def test_skip_bad_is_advised_only_when_other_files_are_readable(small_fx):
    """When the first file fails, --skip-bad is advised only if other files read: a dataset whose every
    file fails the same way (another format, a tool's header) would be skipped whole."""
    files = sorted(small_fx.root.rglob("*.ply"), key=lambda p: [realcache.natural_key(x) for x in p.parts])
    files[0].write_bytes(b"\x89PNG\r\n\x1a\n not a mesh")
    with pytest.raises(RealDataError, match=r"not a PLY file.* \(pass --skip-bad"):
        load_coma(root=small_fx.root, landmarks=small_fx.landmarks)
    for path in files:
        path.write_bytes(b"ply\nformat ascii 1.0\nelement \xe9 1\nend_header\n")
    with pytest.raises(RealDataError) as e:
        load_coma(root=small_fx.root, landmarks=small_fx.landmarks)
    message = str(e.value)
    probed = min(len(files) - 1, realcache.REFERENCE_PROBE)
    assert str(files[0]) in message and "not ASCII" in message and "pass --skip-bad" not in message, message
    assert f"the {probed} other files checked fail too, so --skip-bad would skip them all" in message, message


def test_empty_expression_folder(small_fx, tmp_path):
    empty = small_fx.root / small_fx.identities[1] / "eyebrow"
    empty.mkdir()
    (empty / "notes.txt").write_text("no meshes here")
    with pytest.raises(RealDataError, match=f"{empty}: expression folder holds no PLY file.*--skip-bad"):
        load_coma(root=small_fx.root, landmarks=small_fx.landmarks)
    ds = load_coma(root=small_fx.root, landmarks=small_fx.landmarks, skip_bad=True)
    assert ds.labels == ["mouth_open"]
    manifest = _valid_manifest(tmp_path / "cache")
    assert manifest["empty_folders"] == [f"{small_fx.identities[1]}/eyebrow"]


# --------------------------------------------------------------------------- cache behaviour
def test_cache_is_reused_then_invalidated_by_a_changed_file(small_fx, monkeypatch):
    builds = []
    real_build = realdata.build_from_ply

    def counting(*a, **k):
        builds.append(1)
        return real_build(*a, **k)

    monkeypatch.setattr(realdata, "build_from_ply", counting)
    opts = dict(root=small_fx.root, landmarks=small_fx.landmarks)
    first = load_coma(**opts)
    again = load_coma(**opts)
    assert len(builds) == 1, "the second load must open the cache, not parse again (open time: see benchmarks)"
    assert again.fingerprint == first.fingerprint
    key, path = _one_file(small_fx, 3)
    moved = small_fx.frames[key][3] + 5.0
    write_ply(path, moved / 1000.0, small_fx.faces)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    stale = load_coma(**opts, verify=False)  # trusts the existing cache without scanning
    assert len(builds) == 1 and stale.fingerprint == first.fingerprint
    fresh = load_coma(**opts)
    assert len(builds) == 2 and fresh.fingerprint != first.fingerprint
    seq = next(s for s in fresh.sequences if (s.identity, s.label) == key)
    np.testing.assert_allclose(np.asarray(seq.frames[3]), moved, atol=1e-3)
    # a dataset opened before the rebuild still reads its own (old) frames: the store got new files
    old = next(s for s in first.sequences if (s.identity, s.label) == key)
    np.testing.assert_allclose(np.asarray(old.frames[3]), small_fx.frames[key][3], atol=1e-3)


def test_folder_mode_verification(small_fx, monkeypatch):
    scans = []
    real_scan = realdata.scan_layout
    monkeypatch.setattr(realdata, "scan_layout", lambda *a, **k: (scans.append(1), real_scan(*a, **k))[1])
    opts = dict(root=small_fx.root, landmarks=small_fx.landmarks, verify="folders")
    first = load_coma(**opts)
    scans.clear()
    assert load_coma(**opts).fingerprint == first.fingerprint and scans == []  # no file listed at all
    key, path = _one_file(small_fx, 3)
    # a file added to a sequence folder changes the folder's mtime: rescanned and rebuilt
    extra = path.with_name(path.name.replace(".000004", ".000099"))
    write_ply(extra, small_fx.frames[key][-1] / 1000.0, small_fx.faces)
    grown = load_coma(**opts)
    seq = next(s for s in grown.sequences if (s.identity, s.label) == key)
    assert seq.length == len(small_fx.frames[key]) + 1 and grown.fingerprint != first.fingerprint
    # removing it again restores the content; a folder touched without a file change is rescanned once
    extra.unlink()
    assert load_coma(**opts).fingerprint == first.fingerprint
    (path.parent / "tmp.txt").write_text("x")
    (path.parent / "tmp.txt").unlink()
    scans.clear()
    load_coma(**opts)
    load_coma(**opts)
    assert len(scans) == 1
    with pytest.raises(RealDataError, match="option verify must be one of"):
        load_coma(**{**opts, "verify": "sometimes"})


def test_touching_files_keeps_the_content_fingerprint(small_fx):
    opts = dict(root=small_fx.root, landmarks=small_fx.landmarks)
    before = load_coma(**opts).fingerprint
    for paths in small_fx.files.values():
        for p in paths[:2]:
            os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    assert load_coma(**opts).fingerprint == before


def test_interrupted_build_is_not_valid_and_resumes(small_fx, tmp_path, monkeypatch):
    info = realdata.RealDatasetInfo("coma", "CoMA", "FC4DFS_COMA_ROOT", "--coma-root", "u", "layout", 60.0)
    total = sum(len(v) for v in small_fx.files.values())
    real_read = realcache._read_one
    calls = []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) > 25:
            raise KeyboardInterrupt
        return real_read(*a, **k)

    monkeypatch.setattr(realcache, "_read_one", flaky)
    chunk = 10 * small_fx.num_vertices * 12  # 10 meshes per chunk
    with pytest.raises(KeyboardInterrupt):
        realdata.open_raw_store(info, small_fx.root, chunk_bytes=chunk)
    (directory,) = _cache_dirs(tmp_path / "cache")
    assert open_store(directory) is None
    progress = json.loads((directory / realcache.PROGRESS).read_text())
    assert progress["next_file"] == 20 and progress["cursor"] == 20
    calls.clear()
    monkeypatch.setattr(realcache, "_read_one", lambda *a, **k: (calls.append(1), real_read(*a, **k))[1])
    store = realdata.open_raw_store(info, small_fx.root, chunk_bytes=chunk)
    assert len(calls) == total - 20
    assert not (directory / realcache.PROGRESS).exists()
    for i, rec in enumerate(store.sequences):
        np.testing.assert_allclose(np.asarray(store.sequence_frames(i)),
                                   small_fx.frames[(rec["identity"], rec["label"])], atol=1e-3)
    uninterrupted = load_coma(root=small_fx.root, landmarks=small_fx.landmarks, cache_dir=tmp_path / "other")
    assert uninterrupted.fingerprint == load_coma(root=small_fx.root, landmarks=small_fx.landmarks).fingerprint


@pytest.mark.parametrize("damage", ["manifest", "resealed", "frames", "crc", "aligned"])
def test_a_damaged_store_is_rebuilt_and_said_in_one_line(small_fx, tmp_path, capsys, damage):
    from fc4dfs.datasets.storage import sealed

    opts = dict(root=small_fx.root, landmarks=small_fx.landmarks)
    load = load_coma_aligned if damage == "aligned" else load_coma
    want = [np.array(s.frames) for s in load(**opts).sequences]
    (store,) = [d for d in _cache_dirs(tmp_path / "cache") if ("coma_aligned" in str(d)) == (damage == "aligned")]
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["sequences"][1]["start"] -= 1  # the second sequence now begins inside the first
    if damage in ("manifest", "aligned"):
        (store / "manifest.json").write_text(json.dumps(manifest))
    elif damage == "resealed":  # self-consistent manifest, but frame 0 of sequence 1 is not its data any more
        manifest["sequences"][1]["start"] = manifest["frame_count"]
        (store / "manifest.json").write_text(json.dumps(sealed(manifest)))
    else:  # same size, other bytes: in the frames, or in the digests
        name, at = ("frames.f32", 12) if damage == "frames" else ("crc32.u32", 0)
        with open(store / name, "r+b") as f:
            f.seek(at)
            f.write(b"\x00\x00\x80\x7f")
    capsys.readouterr()
    got = [np.array(s.frames) for s in load(**opts).sequences]
    err = capsys.readouterr().err
    assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))
    lines = [line for line in err.splitlines() if "is damaged" in line]
    assert len(lines) == 1 and str(store) in lines[0] and lines[0].endswith("rebuilding it"), err
    load(**opts)
    assert "is damaged" not in capsys.readouterr().err  # healed: opened silently


def test_temporaries_of_a_killed_build_are_removed_by_the_next(small_fx, tmp_path, capsys):
    opts = dict(root=small_fx.root, landmarks=small_fx.landmarks)
    load_coma(**opts)
    (store,) = _cache_dirs(tmp_path / "cache")
    (store / "VALID").unlink()  # killed before the end: never opened as valid, rebuilt by the next use
    leftovers = [store / ".manifest.json.k1ll3d.tmp", store / ".progress.json.k1ll3d.tmp"]
    for p in leftovers:
        p.write_text("{")
    load_coma(**opts)
    assert open_store(store) is not None and not any(p.exists() for p in leftovers)
    assert "removed 2 temporary file(s) left by an interrupted cache build" in capsys.readouterr().err


def test_cache_dir_option(small_fx, tmp_path):
    load_coma(root=small_fx.root, landmarks=small_fx.landmarks, cache_dir=tmp_path / "mine")
    assert len(_cache_dirs(tmp_path / "mine" / "realdata" / "coma")) == 1
    assert not (tmp_path / "cache" / "realdata").exists()
    shutil.rmtree(tmp_path / "mine")


# --------------------------------------------------------------------------- Aligned CoMA
def test_aligned_cuts_neutral_to_apex_and_resamples(coma_fx):
    raw = load_coma(root=coma_fx.root, landmarks=coma_fx.landmarks)
    ds = load_coma_aligned(root=coma_fx.root, landmarks=coma_fx.landmarks, lengths="20,30")
    assert len(ds.sequences) == 2 * len(raw.sequences)
    for s in ds.sequences:
        key = (s.identity, s.label)
        t = coma_fx.timing[key]
        numbers = coma_fx.frame_numbers[key]
        onset, apex = s.meta["raw_frames"]
        # frame numbers start at 1: the neutral hold is 1..hold0, the apex plateau starts at hold0+rise+1
        assert t["hold0"] - 2 <= onset <= t["hold0"], (onset, t)
        assert t["hold0"] + t["rise"] + 1 <= apex <= t["hold0"] + t["rise"] + 3, (apex, t)
        assert s.kind == "n2e" and s.length == s.meta["target_length"] in (20, 30)
        truth = coma_fx.frames[key]
        np.testing.assert_allclose(np.asarray(s.frames[0]), truth[numbers.index(onset)], atol=2e-3)
        np.testing.assert_allclose(np.asarray(s.frames[-1]), truth[numbers.index(apex)], atol=2e-3)
        assert s.fps == pytest.approx((s.length - 1) / ((apex - onset) / 60.0))
        # real motion, no padding: displacement from the neutral grows monotonically along the cut
        d = np.linalg.norm(np.asarray(s.frames) - np.asarray(s.frames[:1]), axis=-1).mean(-1)
        assert np.all(np.diff(d) > -1e-3)
    with_offset = load_coma_aligned(root=coma_fx.root, landmarks=coma_fx.landmarks, lengths=25, include_offset=True)
    parts = [s.meta["part"] for s in with_offset.sequences]
    assert parts.count("onset") == parts.count("offset") == len(raw.sequences)
    off = next(s for s in with_offset.sequences if s.meta["part"] == "offset")
    d = np.linalg.norm(np.asarray(off.frames) - np.asarray(off.frames[:1]), axis=-1).mean(-1)
    assert off.meta["reversed"] and d[-1] > 0.9 * d.max() and np.all(np.diff(d) > -1e-3)


def test_aligned_options_are_checked(coma_fx):
    for bad in ({"lengths": "20,1"}, {"lengths": "x"}, {"apex_ratio": 0.01}):
        with pytest.raises(RealDataError):
            load_coma_aligned(root=coma_fx.root, landmarks=coma_fx.landmarks, **bad)


def test_resample_by_time_follows_capture_times():
    from fc4dfs.datasets.aligned import resample_by_time

    times = np.array([0, 1, 2, 4, 5, 6], dtype=float)  # capture 3 is missing
    frames = (times[:, None, None] * np.ones((1, 2, 3))).astype(np.float32)  # linear motion in time
    out = resample_by_time(frames, times, 13)
    np.testing.assert_allclose(out[:, 0, 0], np.linspace(0, 6, 13), atol=1e-6)


def test_find_cuts_on_a_known_curve():
    from fc4dfs.datasets.aligned import AlignOptions, find_cuts
    from fc4dfs.datasets.fixtures import expression_weights

    w = expression_weights(4, 6, 5, 6, 3)
    frames = w[:, None, None] * np.ones((1, 3, 3)) * 10.0
    cuts, stats = find_cuts(frames, AlignOptions(smooth=1, include_offset=True))
    onset, offset = cuts
    assert (onset.start, onset.stop) == (3, 10)  # last neutral frame, first apex-plateau frame
    assert (offset.start, offset.stop, offset.reverse) == (14, 21, True)
    assert stats["peak_mm"] == pytest.approx(np.sqrt(300.0))
    assert find_cuts(np.zeros((5, 3, 3)), AlignOptions())[0] == []


# --------------------------------------------------------------------------- CLI options and registry
def test_cli_options_map_flags_to_dataset_options():
    from fc4dfs.datasets.realdata_cli import add_dataset_arguments, dataset_options_from_args

    p = argparse.ArgumentParser()
    add_dataset_arguments(p)
    args = p.parse_args(["--coma-root", "/c", "--landmarks", "/l.pkl", "--skip-bad", "--aligned-lengths", "20,30"])
    assert dataset_options_from_args("coma", args) == {"root": "/c", "landmarks": "/l.pkl", "skip_bad": True}
    assert dataset_options_from_args("coma_aligned", args)["lengths"] == [20, 30]
    assert dataset_options_from_args("florence4d", args) == {"landmarks": "/l.pkl", "skip_bad": True}
    assert dataset_options_from_args("synthetic", args) == {}
    assert dataset_options_from_args("coma", p.parse_args([])) == {}


def test_unknown_option_is_a_one_line_error(coma_fx):
    from fc4dfs.plugins.errors import ComponentError

    with pytest.raises(ComponentError, match=r"dataset 'coma' has no option\(s\) \['lengths'\]; its options are: root"):
        load_coma(root=coma_fx.root, landmarks=coma_fx.landmarks, lengths=[20])
    with pytest.raises(ComponentError, match="'florence4d' has no option"):
        load_florence4d(colour="red")
    with pytest.raises(ComponentError, match="'coma_aligned' has no option"):
        load_coma_aligned(lenghts=[20])


def test_registered_targets_resolve():
    from fc4dfs.plugins.manager import registry

    reg = registry()
    assert reg.load("dataset", "coma") is load_coma
    assert reg.load("dataset", "coma_aligned") is load_coma_aligned
    assert reg.load("dataset", "florence4d") is load_florence4d
