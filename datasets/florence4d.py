"""Florence 4D (Principi et al. 2023) adapter.

Florence4D lies in ``<root>/<identity>/<Expression>/<Expression>_<frame>.ply``: binary
little-endian PLY, FLAME topology (5,023 vertices, 9,976 faces), metres; 95 identities, 70
expressions, every sequence neutral → apex → neutral (``n2e2n``). It cannot be redistributed: ask
the authors for it through the request form on the dataset page
(https://www.micc.unifi.it/resources/datasets/florence-4d-facial-expression/). Frame numbers are
not zero-padded, so files are sorted naturally (``_2`` before ``_10``). The capture frame rate is
not stated with the data; ``fps`` defaults to 25 and only sets the time axis.

Options (also from the environment): ``root`` ($FC4DFS_FLORENCE4D_ROOT), ``landmarks``
($FC4DFS_FLAME_LANDMARKS), ``skip_bad``, ``fps``, ``units`` (m), ``verify``, ``progress``,
``cache_dir``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fc4dfs.datasets.realdata_cli import CliOption

if TYPE_CHECKING:
    from fc4dfs.datasets.base import Dataset

FLORENCE4D_URL = "https://www.micc.unifi.it/resources/datasets/florence-4d-facial-expression/"

DATASET_CLI_OPTIONS: list[CliOption] = [
    CliOption("root", "--florence-root", "folder holding the Florence4D identity folders",
              ("florence4d",), env="FC4DFS_FLORENCE4D_ROOT", metavar="DIR"),
    CliOption("landmarks", "--landmarks", "FLAME landmark embedding: flame_static_embedding.pkl (+ "
              "flame_dynamic_embedding.npy beside it) or a .npz/.npy of (face index, barycentric) pairs",
              ("florence4d",), env="FC4DFS_FLAME_LANDMARKS", metavar="FILE"),
    CliOption("skip_bad", "--skip-bad", "skip unreadable/truncated/NaN meshes and empty folders (listed in the "
              "cache manifest) instead of stopping", ("florence4d",), kind="flag"),
]


def load_florence4d(root: str | None = None, landmarks: Any = None, skip_bad: Any = False, fps: float = 25.0,
                    units: str = "m", verify: Any = "auto", progress: Any = True,
                    cache_dir: str | None = None, **unknown: Any) -> "Dataset":
    """Florence4D: one ``n2e2n`` sequence per (identity, expression), in mm."""
    from fc4dfs.datasets.realdata import RealDatasetInfo, load_real, refuse_unknown_options

    refuse_unknown_options("florence4d", unknown, load_florence4d)
    info = RealDatasetInfo("florence4d", "Florence4D", "FC4DFS_FLORENCE4D_ROOT", "--florence-root",
                           f"the authors' request form ({FLORENCE4D_URL})",
                           "<root>/<identity>/<Expression>/<Expression>_<frame>.ply", default_fps=25.0)
    return load_real(info, root=root, landmarks=landmarks, skip_bad=skip_bad, fps=fps, units=units, verify=verify,
                     progress=progress, cache_dir=cache_dir)
