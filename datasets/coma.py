"""CoMA (Ranjan et al. 2018) and Aligned CoMA (FC-4DFS §4.1) adapters.

CoMA lies in ``<root>/<subject>/<expression>/<expression>.NNNNNN.ply``: 12 subjects, 12
expressions, FLAME topology (5,023 vertices, 9,976 faces), metres; each capture goes neutral → apex
→ neutral at 60 fps. It cannot be redistributed: register and download it at
https://coma.is.tue.mpg.de. The user also supplies FLAME's landmark embedding (see
:mod:`fc4dfs.datasets.landmarks`).

* ``coma``: every capture as one ``n2e2n`` sequence, frames in mm, memory-mapped from the cache.
* ``coma_aligned``: the neutral→apex part of every capture (and the apex→neutral part when
  ``include_offset``), resampled to each of ``lengths`` frames; see :mod:`fc4dfs.datasets.aligned`
  for exactly how the apex and the cut are found.

Options (also from the environment): ``root`` ($FC4DFS_COMA_ROOT), ``landmarks``
($FC4DFS_FLAME_LANDMARKS), ``skip_bad``, ``fps`` (capture rate, 60), ``units`` (m), ``verify``,
``progress``, ``cache_dir``; for ``coma_aligned`` also ``lengths``, ``include_offset``, ``smooth``,
``apex_ratio``, ``onset_ratio``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fc4dfs.datasets.realdata_cli import CliOption

if TYPE_CHECKING:
    from fc4dfs.datasets.base import Dataset

COMA_URL = "https://coma.is.tue.mpg.de"
COMA_LABELS = ("bareteeth", "cheeks_in", "eyebrow", "high_smile", "lips_back", "lips_up", "mouth_down",
               "mouth_extreme", "mouth_middle", "mouth_open", "mouth_side", "mouth_up")

DATASET_CLI_OPTIONS: list[CliOption] = [
    CliOption("root", "--coma-root", "folder holding the CoMA subject folders (FaceTalk_*)",
              ("coma", "coma_aligned"), env="FC4DFS_COMA_ROOT", metavar="DIR"),
    CliOption("landmarks", "--landmarks", "FLAME landmark embedding: flame_static_embedding.pkl (+ "
              "flame_dynamic_embedding.npy beside it) or a .npz/.npy of (face index, barycentric) pairs",
              ("coma", "coma_aligned"), env="FC4DFS_FLAME_LANDMARKS", metavar="FILE"),
    CliOption("skip_bad", "--skip-bad", "skip unreadable/truncated/NaN meshes and empty folders (listed in the "
              "cache manifest) instead of stopping", ("coma", "coma_aligned"), kind="flag"),
    CliOption("lengths", "--aligned-lengths", "Aligned CoMA: target lengths, e.g. 20,25,30",
              ("coma_aligned",), metavar="N[,N...]", kind="ints"),
    CliOption("include_offset", "--aligned-offset", "Aligned CoMA: also keep each apex->neutral part "
              "(time-reversed, as its own sequence)", ("coma_aligned",), kind="flag"),
]


def _info():
    from fc4dfs.datasets.realdata import RealDatasetInfo

    return RealDatasetInfo("coma", "CoMA", "FC4DFS_COMA_ROOT", "--coma-root", COMA_URL,
                           "<root>/<subject>/<expression>/<expression>.NNNNNN.ply", default_fps=60.0)


def load_coma(root: str | None = None, landmarks: Any = None, skip_bad: Any = False, fps: float = 60.0,
              units: str = "m", verify: Any = "auto", progress: Any = True, cache_dir: str | None = None,
              **unknown: Any) -> "Dataset":
    """CoMA: one ``n2e2n`` sequence per (subject, expression) capture, in mm."""
    _check_options("coma", unknown, load_coma)
    from fc4dfs.datasets.realdata import load_real

    return load_real(_info(), root=root, landmarks=landmarks, skip_bad=skip_bad, fps=fps, units=units,
                     verify=verify, progress=progress, cache_dir=cache_dir)


def load_coma_aligned(root: str | None = None, landmarks: Any = None, skip_bad: Any = False,
                      lengths: Any = (20, 25, 30), include_offset: Any = False, smooth: int = 5,
                      apex_ratio: float = 0.95, onset_ratio: float = 0.05, fps: float = 60.0, units: str = "m",
                      verify: Any = "auto", progress: Any = True, cache_dir: str | None = None,
                      **unknown: Any) -> "Dataset":
    """Aligned CoMA: neutral→apex cuts of every capture, resampled to each of ``lengths`` (``n2e``)."""
    _check_options("coma_aligned", unknown, load_coma_aligned)
    import numpy as np

    from fc4dfs.datasets.aligned import AlignOptions, aligned_parts
    from fc4dfs.datasets.realcache import build_derived, from_runs, open_store
    from fc4dfs.datasets.realdata import (RealDataError, as_bool, as_lengths, dataset_from_store, open_raw_store,
                                          resolve_landmarks, resolve_root, store_dir, topology_of)
    from fc4dfs.datasets.storage import stable_hash

    info = _info()
    try:
        opts = AlignOptions(as_lengths(lengths), as_bool(include_offset, "include_offset"), int(smooth),
                            float(apex_ratio), float(onset_ratio))
    except ValueError as e:
        raise RealDataError(f"coma_aligned: {e}") from None
    if float(fps) <= 0:
        raise RealDataError(f"option fps must be positive, got {fps!r}")
    path = resolve_root(info, root)
    embedding = resolve_landmarks(info, landmarks)
    show = as_bool(progress, "progress")
    raw = open_raw_store(info, path, units=units, skip_bad=as_bool(skip_bad, "skip_bad"),
                         verify=verify, progress=show, cache=cache_dir)
    topo = topology_of(raw, embedding, "coma")
    build_id = stable_hash({"raw": raw.build_id, "align": opts.as_dict(), "fps": float(fps), "version": 1})
    directory = store_dir("coma_aligned", build_id, cache_dir)
    store = open_store(directory, build_id)
    if store is None:
        def produce():
            for i, rec in enumerate(raw.sequences):
                frames = np.asarray(raw.sequence_frames(i), dtype=np.float32)
                for part, out in aligned_parts(frames, from_runs(rec["frame_runs"]), float(fps), opts):
                    yield {"identity": rec["identity"], "label": rec["label"], **part}, out

        per_seq = (2 if opts.include_offset else 1) * sum(opts.lengths)
        store = build_derived(directory, build_id, raw.faces, raw.num_vertices, per_seq * len(raw.sequences),
                              produce, {"source_build": raw.build_id, "align": opts.as_dict()}, progress=show,
                              total=len(raw.sequences), name="coma_aligned")
    return dataset_from_store("coma_aligned", store, topo, "n2e", float(fps), {"align": opts.as_dict()})


def _check_options(name: str, unknown: dict, fn: Any) -> None:
    from fc4dfs.datasets.realdata import refuse_unknown_options

    refuse_unknown_options(name, unknown, fn)
