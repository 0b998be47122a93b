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
