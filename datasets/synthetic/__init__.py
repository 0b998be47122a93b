"""``synthetic``: the embedded procedural 4D face dataset (the suite's default; no download).

    from fc4dfs.datasets.synthetic import load_synthetic
    ds = load_synthetic()                                   # 12 identities x 12 CoMA labels
    ds = load_synthetic(resolution="small", identities=8)   # a fast one for unit tests

The data is a pure function of the options and :data:`SYNTHETIC_VERSION`; it is generated
once, stored under ``<cache>/synthetic/`` (``$FC4DFS_CACHE`` overrides the location) and read
back memory-mapped. See README.md next to this file for what the generator models.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from fc4dfs.datasets.base import Dataset, Sequence
from fc4dfs.datasets.storage import report_repair, stable_hash
from fc4dfs.datasets.synthetic import cache
from fc4dfs.datasets.synthetic.cache import CacheCorruptError
from fc4dfs.datasets.synthetic.expressions import COMA_LABELS, NAMED_LABELS, descriptions
from fc4dfs.datasets.synthetic.generate import SyntheticConfig, generate
from fc4dfs.datasets.synthetic.template import RESOLUTIONS, build_template

#: Bump whenever the generated data would change: it is part of the cache key and of
#: ``Dataset.version``, so results are only comparable within one version.
SYNTHETIC_VERSION = "1.2"

__all__ = ["SYNTHETIC_VERSION", "COMA_LABELS", "NAMED_LABELS", "RESOLUTIONS", "SyntheticConfig",
           "SyntheticDataset", "load_synthetic", "cache_key"]


class SyntheticDataset(Dataset):
    """A :class:`Dataset` with the generator's config, cache location and per-identity facts."""

    def __init__(self, *args: Any, config: SyntheticConfig, path: Path, manifest: dict, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.config = config
        self.cache_path = path
        self.identity_params: dict[str, dict] = manifest["identity_params"]
        self.styles: dict[str, dict] = manifest["styles"]

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", {self.config.resolution}, seed {self.config.seed})"


def cache_key(config: SyntheticConfig) -> str:
    """Directory name of ``config``'s cache entry (resolution + hash of config and version)."""
    return f"{config.resolution}-{stable_hash({'version': SYNTHETIC_VERSION, 'config': config.as_dict()})}"


def load_synthetic(identities: int = 12, expressions: int = 12, repetitions: int = 2,
                   kinds: Any = ("n2e", "n2e2n"), resolution: str = "default",
                   fps: Any = (15.0, 20.0, 25.0, 30.0), seed: int = 0, noise: float = 0.0,
                   labels: Any = (), verify: str = "auto", progress: bool = True) -> SyntheticDataset:
    """Generate (or read from the cache) the synthetic dataset.

    identities: people (>= 4); expressions: how many labels (CoMA's 12 first, then further named
    expressions, then procedural mixes) unless ``labels`` names them; repetitions: sequences per
    (identity, label); kinds: the sequence kinds, assigned per label (label k of the catalogue is
    always ``kinds[k % len(kinds)]``, so a label implies its kind); resolution: small (~0.5 k
    vertices), default (~1.7 k) or flame (~5 k); fps: frame rates drawn per sequence; noise:
    per-frame Gaussian noise in mm (frame 0 stays exact); verify: how to check an existing cache
    (full, auto = full up to 1 GiB then sampled chunks, size). Strings such as ``"8"`` or
    ``"n2e,n2e2n"`` are accepted, as they come from the command line.
    """
    config = SyntheticConfig(
        identities=int(identities), expressions=int(expressions), repetitions=int(repetitions),
        kinds=_as_tuple(kinds, str), resolution=str(resolution), fps=_as_tuple(fps, float),
        seed=int(seed), noise=float(noise), labels=_as_tuple(labels, str))
    key = cache_key(config)
    path = cache.entry_dir(key)
    try:
        manifest = _valid_manifest(config, key, verify)
    except CacheCorruptError as e:
        if path.exists():
            report_repair(f"{e}; rebuilding the synthetic cache")
        manifest = _build_locked(config, key, verify, progress)
    return _open(config, path, manifest)


def _valid_manifest(config: SyntheticConfig, key: str, verify: str) -> dict:
    """The manifest of ``key``'s cache entry if it is complete, intact and current."""
    path = cache.entry_dir(key)
    manifest = cache.read_manifest(path)
    if manifest.get("key") != key:
        raise CacheCorruptError(f"{path} holds another dataset ({manifest.get('key')})")
    topo = build_template(config.resolution).topology.hash
    if manifest.get("topology") != topo:
        raise CacheCorruptError(f"{path} was built for topology {manifest.get('topology')}, this code makes {topo}")
    cache.verify(path, manifest, verify)
    return manifest


def _as_tuple(value: Any, cast: type) -> tuple:
    if isinstance(value, str):
        value = [v for v in value.replace(";", ",").split(",") if v.strip()]
    elif isinstance(value, (int, float)):
        value = [value]
    return tuple(cast(v.strip()) if isinstance(v, str) else cast(v) for v in value)


def _build_locked(config: SyntheticConfig, key: str, verify: str, progress: bool) -> dict:
    from filelock import FileLock

    path = cache.entry_dir(key)
    with FileLock(cache.lock_path(key)):
        try:  # another process may have built it while we waited
            return _valid_manifest(config, key, verify)
        except CacheCorruptError:
            pass
        cache.build(key, lambda tmp: _write(config, key, tmp, progress))
        return cache.read_manifest(path)


def _write(config: SyntheticConfig, key: str, tmp: Path, progress: bool) -> dict:
    from tqdm.auto import tqdm

    tpl = build_template(config.resolution)
    frames_w = cache.ChunkedWriter(tmp / cache.FRAMES)
    neutral_w = cache.ChunkedWriter(tmp / cache.NEUTRALS)
    seqs: list[dict] = []
    params: dict[str, dict] = {}
    styles: dict[str, dict] = {}
    start = 0
    bar = tqdm(total=config.num_sequences, desc=f"synthetic {config.resolution}", unit="seq",
               disable=not progress, leave=False)
    try:
        for ident, stream in generate(config):
            neutral_w.write(ident.face.neutral)
            params[ident.name] = ident.params.as_dict()
            styles[ident.name] = ident.style.as_dict()
            for s in stream:
                frames_w.write(s.frames)
                seqs.append({"identity": s.identity, "label": s.label, "kind": s.kind, "fps": s.fps,
                             "start": start, "length": int(s.frames.shape[0]), "meta": s.meta})
                start += int(s.frames.shape[0])
                bar.update(1)
    finally:
        bar.close()
        files = {cache.FRAMES: frames_w.close(), cache.NEUTRALS: neutral_w.close()}
    digest = hashlib.sha256(key.encode())
    for name in sorted(files):
        digest.update("".join(files[name]["sha256"]).encode())
    return {"format": cache.FORMAT, "version": SYNTHETIC_VERSION, "key": key,
            "config": config.as_dict(), "topology": tpl.topology.hash,
            "num_vertices": tpl.num_vertices, "total_frames": start,
            "identities": config.identity_names, "labels": config.label_names,
            "identity_params": params, "styles": styles, "sequences": seqs, "files": files,
            "fingerprint": digest.hexdigest()[:16]}


def _open(config: SyntheticConfig, path: Path, manifest: dict) -> SyntheticDataset:
    topo = build_template(config.resolution).topology
    v = topo.num_vertices
    frames = cache.open_array(path, cache.FRAMES, (int(manifest["total_frames"]), v, 3))
    neutrals = cache.open_array(path, cache.NEUTRALS, (len(manifest["identities"]), v, 3))
    ids = manifest["identities"]
    sequences = [Sequence(e["identity"], e["label"], frames[e["start"]:e["start"] + e["length"]],
                          float(e["fps"]), e["kind"], topo, e["meta"])
                 for e in manifest["sequences"]]
    neutral_map = {name: neutrals[k] for k, name in enumerate(ids)}
    return SyntheticDataset("synthetic", topo, sequences, manifest["labels"], ids,
                            fingerprint=manifest["fingerprint"], neutrals=neutral_map,
                            version=SYNTHETIC_VERSION, config=config, path=path, manifest=manifest,
                            descriptions={lab: descriptions(lab) for lab in manifest["labels"]})
