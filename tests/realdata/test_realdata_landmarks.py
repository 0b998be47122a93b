"""Landmark embeddings: FLAME pickle/npy formats, the safe unpickler, validation against a topology."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from fc4dfs.datasets.base import TopologyMismatchError
from fc4dfs.datasets.landmarks import (LandmarkEmbeddingError, load_landmark_embedding, safe_unpickle,
                                       save_landmark_embedding)

N_FACES = 9976


def _bary(rng, *shape):
    b = rng.random(shape + (3,))
    return b / b.sum(-1, keepdims=True)


def _py2_style_pickle(obj) -> bytes:
    """A protocol-2 pickle naming numpy's pre-2.0 module path, as FLAME's Python 2 files do."""
    return pickle.dumps(obj, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


@pytest.fixture
def flame_files(tmp_path):
    rng = np.random.default_rng(0)
    static = {"lmk_face_idx": rng.integers(0, N_FACES, 51).astype(np.uint32), "lmk_b_coords": _bary(rng, 51)}
    dynamic = {"lmk_face_idx": rng.integers(0, N_FACES, (79, 17)), "lmk_b_coords": _bary(rng, 79, 17)}
    (tmp_path / "flame_static_embedding.pkl").write_bytes(_py2_style_pickle(static))
    np.save(tmp_path / "flame_dynamic_embedding.npy", dynamic, allow_pickle=True)
    return tmp_path, static, dynamic


def test_static_pickle_with_dynamic_sibling_gives_68_contour_first(flame_files):
    folder, static, dynamic = flame_files
    emb = load_landmark_embedding(folder / "flame_static_embedding.pkl")
    assert emb.num_landmarks == 68
    assert np.array_equal(emb.face_idx[:17], dynamic["lmk_face_idx"][0])  # yaw 0 row
    assert np.array_equal(emb.face_idx[17:], static["lmk_face_idx"])
    np.testing.assert_allclose(emb.bary[17:], static["lmk_b_coords"], rtol=1e-6)
    assert "flame_dynamic_embedding.npy" in emb.source
    # the same from two explicit files, in either order and as one comma-separated string
    both = load_landmark_embedding(f"{folder / 'flame_dynamic_embedding.npy'},{folder / 'flame_static_embedding.pkl'}")
    assert np.array_equal(both.face_idx, emb.face_idx)


def test_static_alone_warns_and_gives_51(flame_files):
    folder, _, _ = flame_files
    (folder / "flame_dynamic_embedding.npy").unlink()
    with pytest.warns(UserWarning, match="51 static"):
        emb = load_landmark_embedding(folder / "flame_static_embedding.pkl")
    assert emb.num_landmarks == 51


def test_deca_full_npy_npz_and_plain_array(tmp_path):
    rng = np.random.default_rng(1)
    idx, bary = rng.integers(0, N_FACES, 68), _bary(rng, 68)
    np.save(tmp_path / "landmark_embedding.npy", {"full_lmk_faces_idx": idx[None], "full_lmk_bary_coords": bary[None],
                                                  "static_lmk_faces_idx": idx[17:]}, allow_pickle=True)
    save_landmark_embedding(tmp_path / "e.npz", idx, bary)
    np.save(tmp_path / "rows.npy", np.column_stack([idx, bary]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("landmark_embedding.npy", "e.npz", "rows.npy"):
            emb = load_landmark_embedding(tmp_path / name)
            assert emb.num_landmarks == 68 and np.array_equal(emb.face_idx, idx), name
            np.testing.assert_allclose(emb.bary, bary, rtol=1e-6)


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"lmk_face_idx": Evil(), "lmk_b_coords": np.ones((1, 3))}))
    with pytest.raises(LandmarkEmbeddingError, match=r"evil.pkl: refusing to load '\w+\.open'"):
        load_landmark_embedding(tmp_path / "evil.pkl")
    assert not marker.exists()
    np.save(tmp_path / "evil.npy", np.array([Evil()], dtype=object), allow_pickle=True)
    with pytest.raises(LandmarkEmbeddingError, match="refusing"):
        load_landmark_embedding(tmp_path / "evil.npy")
    assert not marker.exists()
    with pytest.raises(LandmarkEmbeddingError, match="not a readable pickle"):
        safe_unpickle(b"\x80\x02garbage", "x.pkl")


def test_embedding_must_fit_the_topology(tmp_path):
    rng = np.random.default_rng(2)
    save_landmark_embedding(tmp_path / "e.npz", rng.integers(0, N_FACES, 68), _bary(rng, 68))
    emb = load_landmark_embedding(tmp_path / "e.npz")
    faces = np.zeros((1000, 3), np.int64)
    with pytest.raises(TopologyMismatchError, match=r"e\.npz names face \d+ but the dataset's topology has 1000"):
        emb.topology(faces, 600)
    save_landmark_embedding(tmp_path / "w.npz", [1, 2], [[0.5, 0.5, 0.5], [1, 0, 0]])
    with pytest.raises(TopologyMismatchError, match="w.npz: barycentric weights of landmark 0 sum to 1.5"):
        load_landmark_embedding(tmp_path / "w.npz").topology(faces, 600)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pkl does not exist.*flame.is.tue.mpg.de"):
        load_landmark_embedding(tmp_path / "nope.pkl")
    (tmp_path / "e.txt").write_text("1 2 3")
    with pytest.raises(LandmarkEmbeddingError, match="unknown landmark embedding format"):
        load_landmark_embedding(tmp_path / "e.txt")
    np.savez(tmp_path / "k.npz", something=np.zeros(3))
    with pytest.raises(LandmarkEmbeddingError, match="k.npz: no landmark arrays found"):
        load_landmark_embedding(tmp_path / "k.npz")
    np.save(tmp_path / "shape.npy", np.zeros((5, 3)))
    with pytest.raises(LandmarkEmbeddingError, match=r"\[L, 4\]"):
        load_landmark_embedding(tmp_path / "shape.npy")


class _Reduces:
    """Pickles as ``func(*args)``: writes a pickle naming any global without importing or running it."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_numeric_data_in_every_pickle_protocol_is_rebuilt_torch_as_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a = rng.random((4, 3))
    data = {"np": a, "np_t": a.T, "np_be": a.astype(">f4"), "i": np.arange(5, dtype=np.uint32),
            "t": torch.from_numpy(a), "t_strided": torch.arange(12).reshape(3, 4).t()[1:],
            "t_half": torch.tensor([1.5, -2.25], dtype=torch.bfloat16), "t_bool": torch.tensor([True, False]),
            "t_empty": torch.zeros(0, 3)}
    want = {k: (v.float().numpy() if k == "t_half" else v.numpy()) if isinstance(v, torch.Tensor) else v
            for k, v in data.items()}
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):  # 5 writes numpy._core.numeric._frombuffer
        got = safe_unpickle(pickle.dumps(data, protocol=protocol), f"p{protocol}.pkl")
        for k, v in want.items():
            # numpy's own pickles of protocols 0-4 come back in native byte order
            same_type = got[k].dtype.newbyteorder("=") == v.dtype.newbyteorder("=")
            assert isinstance(got[k], np.ndarray) and same_type and np.array_equal(got[k], v), \
                (protocol, k, got[k], v)


def test_deca_embedding_with_torch_tensors_reads_68(tmp_path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    idx, bary = rng.integers(0, N_FACES, 68), _bary(rng, 68)
    dyn_idx, dyn_bary = rng.integers(0, N_FACES, (79, 17)), _bary(rng, 79, 17)
    deca = {"static_lmk_faces_idx": idx[17:], "static_lmk_bary_coords": bary[17:],
            "dynamic_lmk_faces_idx": torch.from_numpy(dyn_idx), "dynamic_lmk_bary_coords": torch.from_numpy(dyn_bary),
            "full_lmk_faces_idx": idx[None], "full_lmk_bary_coords": bary[None]}
    np.save(tmp_path / "landmark_embedding.npy", deca, allow_pickle=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb = load_landmark_embedding(tmp_path / "landmark_embedding.npy")
    assert emb.num_landmarks == 68 and np.array_equal(emb.face_idx, idx)
    del deca["full_lmk_faces_idx"], deca["full_lmk_bary_coords"]  # static numpy + dynamic torch parts
    np.save(tmp_path / "parts.npy", deca, allow_pickle=True)
    emb = load_landmark_embedding(tmp_path / "parts.npy")
    assert np.array_equal(emb.face_idx, np.concatenate([dyn_idx[0], idx[17:]]))
    np.testing.assert_allclose(emb.bary[:17], dyn_bary[0], rtol=1e-6)


def test_code_inside_torch_and_numpy_records_is_still_refused(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    run = _Reduces(open, str(marker), "w")
    storage_bytes = pickle.dumps(torch.arange(3), protocol=2)
    evil = {
        "storage holds code": pickle.dumps(_Reduces(torch.storage._load_from_bytes, pickle.dumps(run, protocol=2))),
        "chumpy": b"(dp0\nVx\np1\ncchumpy.ch\nCh\np2\n(tRp3\ns.",  # FLAME's generic model pickles hold these
        "torch.load": pickle.dumps(_Reduces(torch.load, storage_bytes)),
        "object array": pickle.dumps(_Reduces(np._core.numeric._frombuffer, b"", np.dtype(object), (0,), "C")),
    }
    for what, data in evil.items():
        with pytest.raises(LandmarkEmbeddingError, match="refusing"):
            safe_unpickle(data, f"{what}.pkl")
        assert not marker.exists(), what


def test_crlf_pickle_error_is_escaped_and_names_the_line_endings():
    crlf = pickle.dumps({"lmk_face_idx": np.arange(3)}, protocol=0).replace(b"\n", b"\r\n")
    with pytest.raises(LandmarkEmbeddingError) as info:
        safe_unpickle(crlf, "crlf.pkl")
    message = str(info.value)
    assert "\r" not in message and "\n" not in message and "\\r" in message, repr(message)
    assert message.startswith("crlf.pkl: not a readable pickle") and "CRLF" in message, message


def test_role_is_decided_by_landmark_count_not_key_names(flame_files):
    folder, static, dynamic = flame_files
    rng = np.random.default_rng(5)
    full = {"lmk_face_idx": rng.integers(0, N_FACES, 68), "lmk_b_coords": _bary(rng, 68)}
    (folder / "flame_static_embedding_68.pkl").write_bytes(_py2_style_pickle(full))  # TF_FLAME's file
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # complete: no warning, and the dynamic sibling is not prepended
        emb = load_landmark_embedding(folder / "flame_static_embedding_68.pkl")
    assert emb.num_landmarks == 68 and np.array_equal(emb.face_idx, full["lmk_face_idx"])
    assert "flame_dynamic_embedding" not in emb.source
    # a 51-landmark .npz under 'full'-looking key names is still FLAME's static part and gets the contour
    save_landmark_embedding(folder / "static.npz", static["lmk_face_idx"], static["lmk_b_coords"])
    np.savez(folder / "contour.npz", face_idx=dynamic["lmk_face_idx"][0], bary=dynamic["lmk_b_coords"][0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb = load_landmark_embedding([folder / "static.npz", folder / "contour.npz"])
    assert emb.num_landmarks == 68 and np.array_equal(emb.face_idx[:17], dynamic["lmk_face_idx"][0])
    with pytest.raises(LandmarkEmbeddingError, match="already holds a complete embedding of 68 landmarks"):
        load_landmark_embedding([folder / "flame_static_embedding_68.pkl", folder / "flame_dynamic_embedding.npy"])
