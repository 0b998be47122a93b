"""Conformance kit: the checks every component must pass (in the spirit of ``check_estimator``).

Run it on your own plugin from Python::

    from fc4dfs.plugins.testing import check_generator
    check_generator(MyGenerator)              # raises ConformanceError listing every failure

or from the shell: ``fc4dfs-bench check --gen NAME`` (also ``--dec``, ``--pipeline``, ``--dataset``,
``--metric``). Generators, decoders and pipelines are trained at the ``smoke`` budget on
:func:`fc4dfs.datasets.fixtures.tiny_dataset`, a small procedural dataset (a few hundred vertices)
made for these checks.
"""
from __future__ import annotations

import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fc4dfs.datasets.base import Dataset, Sequence, Topology, TopologyMismatchError
from fc4dfs.datasets.fixtures import tiny_dataset
from fc4dfs.plugins.contracts import (CONTROLS, Budget, Decoder, EvalContext, EvalItem, Generator, Metric, MetricValue,
                                      Pipeline)
from fc4dfs.plugins.errors import CheckpointMismatchError, ComponentError


class ConformanceError(AssertionError):
    """One or more conformance checks failed; the message lists each."""


@dataclass
class Report:
    component: str
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def check(self, name: str, fn: Callable[[], Any]) -> Any:
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001 - every failure is reported, not raised here
            tb = traceback.format_exception_only(type(e), e)[-1].strip()
            self.failed.append((name, tb))
            return None
        self.passed.append(name)
        return out

    def raise_if_failed(self) -> "Report":
        if self.failed:
            lines = "\n".join(f"  - {n}: {msg}" for n, msg in self.failed)
            raise ConformanceError(f"{self.component} failed {len(self.failed)} conformance check(s):\n{lines}")
        return self

    def summary(self) -> str:
        return f"{self.component}: {len(self.passed)} passed, {len(self.failed)} failed"


def other_topology(topology: Topology) -> Topology:
    """A topology that differs from ``topology`` (for refusal checks)."""
    faces = topology.faces[::-1].copy()
    return Topology(faces, topology.num_vertices, topology.lmk_face_idx[::-1] % len(faces),
                    topology.lmk_bary, name="other")


def _test_batch(ds: Dataset, n: int = 3) -> tuple[np.ndarray, np.ndarray, list[str], list[Sequence]]:
    _, test_ids = ds.generator_split()
    seqs = [s for s in ds.sequences if s.identity in test_ids][:n]
    meshes = np.stack([ds.neutral(s.identity) for s in seqs])
    return meshes, ds.topology.landmarks(meshes), [s.label for s in seqs], seqs


def _finite(a: np.ndarray, what: str) -> None:
    if not np.isfinite(a).all():
        raise AssertionError(f"{what} contains NaN or Inf")


def _expect_raises(excs: tuple[type[BaseException], ...], fn: Callable[[], Any], what: str) -> None:
    try:
        fn()
    except excs:
        return
    raise AssertionError(f"{what} was accepted; expected one of {[e.__name__ for e in excs]}")


def _smoke_fit(kind: str, cls: type, options: dict | None, dataset: Dataset | None,
               budget: Budget | None) -> tuple[Report, Dataset, Callable[[int], Any]]:
    """The start of a trained component's check: its report, the data, and ``fit(seed)`` on the generator
    split's training identities at ``budget`` (default smoke)."""
    ds = dataset or tiny_dataset()
    budget = budget or Budget("smoke")
    train = ds.subset(ds.generator_split()[0])

    def fit(seed: int) -> Any:
        component = cls(**(options or {}))
        component.fit(train, budget, seed=seed, device="cpu", progress=False)
        return component

    return Report(f"{kind} {getattr(cls, 'name', cls)}"), ds, fit


# --------------------------------------------------------------------------- generators
def check_generator(cls: type[Generator], options: dict | None = None, dataset: Dataset | None = None,
                    budget: Budget | None = None) -> Report:
    """Train ``cls`` at the smoke budget and check the Generator contract."""
    rep, ds, fit = _smoke_fit("generator", cls, options, dataset, budget)
    meshes, nlm, labels, _ = _test_batch(ds)
    g = rep.check("fit at smoke budget", lambda: fit(0))
    if g is None:
        return rep.raise_if_failed()
    rep.check("declares name, version, description",
              lambda: _assert(bool(cls.name and cls.version and cls.description), "missing metadata"))
    out = rep.check("generate", lambda: g.generate(nlm, labels, 12, fps=30.0, seed=0))
    if out is not None:
        rep.check("output shape [B, T, L, 3]", lambda: _assert(out.shape == (len(labels), 12, nlm.shape[1], 3),
                                                                f"got {out.shape}"))
        rep.check("output float32", lambda: _assert(out.dtype == np.float32, f"got {out.dtype}"))
        rep.check("no NaN/Inf", lambda: _finite(out, "generated landmarks"))
        rep.check("frame 0 is the given neutral", lambda: _assert(
            np.abs(out[:, 0] - nlm).max() < 1e-3, f"max deviation {np.abs(out[:, 0] - nlm).max():.4g} mm"))
        rep.check("units: mm, same scale as the input", lambda: _scale_ok(out, nlm))
        rep.check("deterministic under a seed", lambda: _assert(
            np.array_equal(out, g.generate(nlm, labels, 12, fps=30.0, seed=0)), "two calls differ"))
        if cls.stochastic:
            rep.check("stochastic: other seed, other sample", lambda: _assert(
                not np.allclose(out, g.generate(nlm, labels, 12, fps=30.0, seed=1)), "samples identical"))
    for length in (7, 33):
        rep.check(f"honours length {length}", lambda L=length: _assert(
            g.generate(nlm, labels, L, fps=30.0, seed=0).shape[1] == L, "wrong length"))
    rep.check("declares known controls", lambda: _assert(
        set(cls.controls) <= set(CONTROLS) and g.active_controls() <= set(cls.controls),
        f"unknown controls {sorted(set(cls.controls) - set(CONTROLS))} or active ones not declared"))
    timing = {"onset": 0.1, "apex": 0.4, "offset": 0.7}
    for control, kwargs in (("intensity", {"intensity": 0.5}), ("timing", {"timing": timing})):
        if control in g.active_controls():
            rep.check(f"honours {control} (shape, finite)", lambda kw=kwargs: _finite(
                g.generate(nlm, labels, 12, fps=30.0, seed=0, **kw), f"landmarks with {control}"))
        else:
            rep.check(f"refuses {control} it does not control", lambda kw=kwargs: _expect_raises(
                (ComponentError, TypeError), lambda: g.generate(nlm, labels, 12, fps=30.0, seed=0, **kw), control))
    if cls.can_fill() and out is not None:
        rep.check("fill keeps the known frames and fills the rest", lambda: _check_fill(g, out, labels))
    if cls.can_generate_text():
        rep.check("generate_text from the label's words", lambda: _check_text(g, nlm, labels, ds))
    rep.check("same seed, same training", lambda: _assert(
        np.allclose(fit(0).generate(nlm, labels, 12, fps=30.0, seed=0), out, atol=1e-5), "retraining differs"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.safetensors"
        rep.check("save", lambda: g.save(path))
        loaded = rep.check("load", lambda: cls.load(path, ds.topology))
        if loaded is not None and out is not None:
            rep.check("save/load round trip", lambda: _assert(
                np.allclose(loaded.generate(nlm, labels, 12, fps=30.0, seed=0), out, atol=1e-5),
                "loaded model generates differently"))
        rep.check("refuses a checkpoint for another topology", lambda: _expect_raises(
            (CheckpointMismatchError,), lambda: cls.load(path, other_topology(ds.topology)), "other topology"))
    rep.check("refuses landmarks of the wrong count", lambda: _expect_raises(
        (TopologyMismatchError, ComponentError), lambda: g.generate(nlm[:, :-1], labels, 12), "wrong L"))
    rep.check("refuses an unknown label", lambda: _expect_raises(
        (ComponentError, KeyError), lambda: g.generate(nlm, ["__no_such_label__"] * len(labels), 12), "bad label"))
    return rep.raise_if_failed()


def _check_interp(p: Pipeline, neutral: np.ndarray, labels: list[str]) -> None:
    """Latent interpolation: ``[1 + K, V, 3]``, frame 0 the neutral, finite, deterministic, and alpha 0 / 1
    give the same meshes whichever label the other end is."""
    other = next((lab for lab in p.labels or [] if lab != labels[0]), None)
    if other is None:
        return
    out = p.interpolate(neutral, labels[0], other, [0.0, 0.5, 1.0], length=12)
    _assert(out.shape == (4,) + neutral.shape, f"interpolate returned {out.shape}")
    _finite(out, "interpolated meshes")
    _assert(np.abs(out[0] - neutral).max() < 1e-3, "frame 0 is not the given neutral")
    back = p.interpolate(neutral, other, labels[0], [0.0, 0.5, 1.0], length=12)
    _assert(np.allclose(out[1], back[3], atol=1e-4) and np.allclose(out[3], back[1], atol=1e-4),
            "alpha 0 of A->B differs from alpha 1 of B->A")


def _check_text(g: Generator, nlm: np.ndarray, labels: list[str], ds: Dataset) -> None:
    """Text control: shape, frame 0 the neutral, deterministic under a seed."""
    texts = [ds.label_texts(lab)[0] for lab in labels]
    out = g.generate_text(nlm, texts, 9, fps=30.0, seed=0)
    _assert(out.shape == (len(labels), 9, nlm.shape[1], 3), f"generate_text returned {out.shape}")
    _finite(out, "text-guided landmarks")
    _assert(np.abs(out[:, 0] - nlm).max() < 1e-3, "frame 0 is not the given neutral")
    _assert(np.array_equal(out, g.generate_text(nlm, texts, 9, fps=30.0, seed=0)), "two calls differ")


def _check_fill(g: Generator, seq: np.ndarray, labels: list[str]) -> None:
    """Expression filling: frames 0-2 and the last are known; the output copies them exactly."""
    mask = np.zeros(seq.shape[:2], dtype=bool)
    mask[:, :3] = mask[:, -1] = True
    known = np.where(mask[..., None, None], seq, np.float32(0.0)).astype(np.float32)
    filled = g.fill(known, mask, labels, seed=0)
    _assert(filled.shape == seq.shape, f"fill returned {filled.shape}, expected {seq.shape}")
    _assert(np.array_equal(filled[mask], known[mask]), "known frames changed")
    _finite(filled, "filled landmarks")


def _assert(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def _scale_ok(out: np.ndarray, nlm: np.ndarray) -> None:
    ref = np.linalg.norm(nlm.max(1) - nlm.min(1), axis=-1).mean()
    got = np.linalg.norm(out.max(2) - out.min(2), axis=-1).mean()
    _assert(0.5 * ref < got < 2.0 * ref, f"landmark extent {got:.1f} mm vs input {ref:.1f} mm")


# --------------------------------------------------------------------------- decoders
def check_decoder(cls: type[Decoder], options: dict | None = None, dataset: Dataset | None = None,
                  budget: Budget | None = None) -> Report:
    """Train ``cls`` at the smoke budget and check the Decoder contract."""
    options = options or {}
    ds = dataset or tiny_dataset()
    budget = budget or Budget("smoke")
    rep = Report(f"decoder {getattr(cls, 'name', cls)}")
    train_ids, _ = ds.generator_split()
    train = ds.subset(train_ids)
    meshes, nlm, labels, seqs = _test_batch(ds, 2)
    t_len = min(s.length for s in seqs)
    lms = np.stack([s.landmarks[:t_len] for s in seqs])

    def fit(seed: int) -> Decoder:
        d = cls(**options)
        d.fit(train, budget, seed=seed, device="cpu", progress=False)
        return d

    d = rep.check("fit at smoke budget", lambda: fit(0))
    if d is None:
        return rep.raise_if_failed()
    rep.check("declares name, version, description",
              lambda: _assert(bool(cls.name and cls.version and cls.description), "missing metadata"))
    out = rep.check("decode", lambda: d.decode(meshes, nlm, lms))
    if out is not None:
        rep.check("output shape [B, T, V, 3]", lambda: _assert(
            out.shape == (len(seqs), t_len, ds.topology.num_vertices, 3), f"got {out.shape}"))
        rep.check("output float32", lambda: _assert(out.dtype == np.float32, f"got {out.dtype}"))
        rep.check("no NaN/Inf", lambda: _finite(out, "decoded meshes"))
        rep.check("units: mm, same scale as the neutral mesh", lambda: _scale_ok(out, meshes))
        rep.check("deterministic", lambda: _assert(np.array_equal(out, d.decode(meshes, nlm, lms)),
                                                   "two calls differ"))
        rep.check("same seed, same training", lambda: _assert(
            np.allclose(fit(0).decode(meshes, nlm, lms), out, atol=1e-4), "retraining differs"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.safetensors"
        rep.check("save", lambda: d.save(path))
        loaded = rep.check("load", lambda: cls.load(path, ds.topology))
        if loaded is not None and out is not None:
            rep.check("save/load round trip", lambda: _assert(
                np.allclose(loaded.decode(meshes, nlm, lms), out, atol=1e-4), "loaded model decodes differently"))
        rep.check("refuses a checkpoint for another topology", lambda: _expect_raises(
            (CheckpointMismatchError,), lambda: cls.load(path, other_topology(ds.topology)), "other topology"))
    rep.check("refuses a mesh of the wrong vertex count", lambda: _expect_raises(
        (TopologyMismatchError, ComponentError), lambda: d.decode(meshes[:, :-1], nlm, lms), "wrong V"))
    return rep.raise_if_failed()


# --------------------------------------------------------------------------- pipelines
def check_pipeline(cls: type[Pipeline], options: dict | None = None, dataset: Dataset | None = None,
                   budget: Budget | None = None) -> Report:
    """Train ``cls`` at the smoke budget and check the Pipeline contract (and each control it declares)."""
    rep, ds, fit = _smoke_fit("pipeline", cls, options, dataset, budget)
    meshes, _, labels, _ = _test_batch(ds)
    p = rep.check("fit at smoke budget", lambda: fit(0))
    if p is None:
        return rep.raise_if_failed()
    rep.check("declares name, version, description, controls", lambda: _assert(
        bool(cls.name and cls.version and cls.description) and set(cls.controls) <= set(CONTROLS),
        f"missing metadata or unknown controls {sorted(set(cls.controls) - set(CONTROLS))}"))
    out = rep.check("synthesize", lambda: p.synthesize(meshes, labels, 12, fps=30.0, seed=0))
    if out is not None:
        rep.check("output shape [B, T, V, 3]", lambda: _assert(
            out.shape == (len(labels), 12, ds.topology.num_vertices, 3), f"got {out.shape}"))
        rep.check("output float32", lambda: _assert(out.dtype == np.float32, f"got {out.dtype}"))
        rep.check("no NaN/Inf", lambda: _finite(out, "synthesized meshes"))
        rep.check("frame 0 is the given neutral", lambda: _assert(
            np.abs(out[:, 0] - meshes).max() < 1e-3, f"max deviation {np.abs(out[:, 0] - meshes).max():.4g} mm"))
        rep.check("units: mm, same scale as the neutral mesh", lambda: _scale_ok(out, meshes))
        rep.check("deterministic under a seed", lambda: _assert(
            np.array_equal(out, p.synthesize(meshes, labels, 12, fps=30.0, seed=0)), "two calls differ"))
        rep.check("same seed, same training", lambda: _assert(
            np.allclose(fit(0).synthesize(meshes, labels, 12, fps=30.0, seed=0), out, atol=1e-4),
            "retraining differs"))
    for length in (7, 33):
        rep.check(f"honours length {length}", lambda L=length: _assert(
            p.synthesize(meshes, labels, L, fps=30.0, seed=0).shape[1] == L, "wrong length"))
    timing = {"onset": 0.1, "apex": 0.4, "offset": 0.7}
    for control, kwargs in (("intensity", {"intensity": 0.5}), ("timing", {"timing": timing})):
        if control in cls.controls:
            rep.check(f"honours {control} (shape, finite)", lambda kw=kwargs: _finite(
                p.synthesize(meshes, labels, 12, fps=30.0, seed=0, **kw), f"meshes with {control}"))
        else:
            rep.check(f"refuses {control} it does not control", lambda kw=kwargs: _expect_raises(
                (ComponentError,), lambda: p.synthesize(meshes, labels, 12, fps=30.0, seed=0, **kw), control))
    if "intensity" in cls.controls:
        rep.check("refuses intensity outside [0, 1.5]", lambda: _expect_raises(
            (ComponentError,), lambda: p.synthesize(meshes, labels, 12, intensity=2.0), "intensity 2.0"))
    if "timing" in cls.controls:
        rep.check("refuses timing out of order", lambda: _expect_raises(
            (ComponentError,), lambda: p.synthesize(meshes, labels, 12, timing={"onset": 0.5, "apex": 0.2,
                                                                               "offset": 0.9}), "apex < onset"))
    if cls.can_interpolate():
        rep.check("interpolate: neutral first, one mesh per alpha, ends at each label's apex code", lambda: _check_interp(
            p, meshes[0], labels))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.safetensors"
        rep.check("save", lambda: p.save(path))
        loaded = rep.check("load", lambda: cls.load(path, ds.topology))
        if loaded is not None and out is not None:
            rep.check("save/load round trip", lambda: _assert(
                np.allclose(loaded.synthesize(meshes, labels, 12, fps=30.0, seed=0), out, atol=1e-4),
                "loaded model synthesizes differently"))
        rep.check("refuses a checkpoint for another topology", lambda: _expect_raises(
            (CheckpointMismatchError,), lambda: cls.load(path, other_topology(ds.topology)), "other topology"))
    rep.check("refuses a mesh of the wrong vertex count", lambda: _expect_raises(
        (TopologyMismatchError, ComponentError), lambda: p.synthesize(meshes[:, :-1], labels, 12), "wrong V"))
    rep.check("refuses an unknown label", lambda: _expect_raises(
        (ComponentError, KeyError), lambda: p.synthesize(meshes, ["__no_such_label__"] * len(labels), 12),
        "bad label"))
    return rep.raise_if_failed()


# --------------------------------------------------------------------------- datasets
def check_dataset(ds: Dataset) -> Report:
    """Check the Dataset contract on a built dataset."""
    rep = Report(f"dataset {ds.name}")
    topo = ds.topology
    rep.check("has labels, identities and sequences", lambda: _assert(
        bool(ds.labels and ds.identities and ds.sequences), "empty"))
    rep.check("at least 4 identities (for 4 folds)", lambda: _assert(len(ds.identities) >= 4,
                                                                      f"{len(ds.identities)}"))
    rep.check("topology hash is stable", lambda: _assert(topo.hash == Topology(
        topo.faces, topo.num_vertices, topo.lmk_face_idx, topo.lmk_bary).hash, "hash differs"))

    def seqs_ok() -> None:
        for s in ds.sequences:
            where = f"{s.identity}/{s.label}"
            _assert(s.frames.ndim == 3 and s.frames.shape[1:] == (topo.num_vertices, 3), f"{where} frames {s.frames.shape}")
            _assert(s.frames.dtype == np.float32, f"{where} dtype {s.frames.dtype}")
            _assert(s.length >= 2, f"{where} has {s.length} frames")
            _assert(s.fps > 0, f"{where} fps {s.fps}")
            _assert(s.identity in ds.identities and s.label in ds.labels, f"{where} unknown id/label")
            _finite(np.asarray(s.frames), where)

    rep.check("sequences: [T, V, 3] float32, finite, known identity and label", seqs_ok)

    def units_mm() -> None:
        v = ds.neutral(ds.identities[0])
        extent = float(np.linalg.norm(v.max(0) - v.min(0)))
        _assert(50.0 < extent < 1000.0, f"neutral face extent {extent:.3g} — not millimetres?")

    rep.check("units are millimetres", units_mm)
    rep.check("landmarks [T, L, 3] lie on the frames", lambda: _assert(
        ds.sequences[0].landmarks.shape == (ds.sequences[0].length, topo.num_landmarks, 3), "bad shape"))

    def frame0_neutral() -> None:
        for s in ds.sequences[:: max(1, len(ds.sequences) // 20)]:
            err = np.abs(s.frames[0] - ds.neutral(s.identity)).max()
            _assert(err < 5.0, f"{s.identity}/{s.label} frame 0 is {err:.2f} mm from the neutral")

    rep.check("frame 0 is (close to) the identity's neutral", frame0_neutral)

    def splits() -> None:
        tr, te = ds.generator_split()
        _assert(not set(tr) & set(te), "generator split overlaps")
        _assert(set(tr) | set(te) == set(ds.identities), "generator split misses identities")
        tests = [t for _, t in ds.folds(4)]
        flat = [i for t in tests for i in t]
        _assert(sorted(flat) == sorted(ds.identities) and len(flat) == len(set(flat)), "folds do not partition")

    rep.check("identity splits and 4 folds partition identities", splits)
    rep.check("fingerprint is stable", lambda: _assert(ds.fingerprint == ds.fingerprint and len(ds.fingerprint) >= 8,
                                                       "unstable"))
    return rep.raise_if_failed()


# --------------------------------------------------------------------------- metrics
def _metric_items(ds: Dataset, rng: np.random.Generator, noise: float) -> list[EvalItem]:
    from fc4dfs.datasets.phases import measure_timing

    items = []
    levels = [0.5, 1.0, 1.5]
    for s in ds.sequences[:6]:
        lm = s.landmarks
        frames = np.asarray(s.frames)
        # the intensity sweep of a perfect pipeline scales the real displacement by each level
        sweep = np.stack([frames[:1] + x * (frames - frames[:1]) for x in levels])
        items.append(EvalItem(s.identity, s.label, s.fps, lm,
                              pred_landmarks=(lm + noise * rng.normal(size=lm.shape)).astype(np.float32),
                              gt_mesh=frames,
                              pred_mesh=(frames + noise * rng.normal(size=frames.shape)).astype(np.float32),
                              samples=np.stack([lm + noise * rng.normal(size=lm.shape) for _ in range(2)]).astype(np.float32),
                              requested_timing=measure_timing(frames),
                              intensity_sweep={"levels": levels, "meshes": (
                                  sweep + noise * rng.normal(size=sweep.shape)).astype(np.float32)}))
    return items


def _check_streamed(m: Metric, items: list[EvalItem], ctx: EvalContext, whole: MetricValue) -> None:
    """Summaries of two chunks, finalised together, give the value and per-item values of one ``compute``
    (to 1e-6 of the value's own scale: a classifier may round differently in another batch)."""
    half = len(items) // 2
    streamed = m.finalize(m.summarize(items[:half], ctx) + m.summarize(items[half:], ctx), ctx)
    tol = 1e-6 * max(1.0, abs(whole.value))
    _assert(abs(streamed.value - whole.value) <= tol,
            f"streamed {streamed.value!r} vs at once {whole.value!r} (limit {tol:.2g})")
    if whole.per_item is not None:
        _assert(streamed.per_item is not None and np.allclose(streamed.per_item, whole.per_item, rtol=0, atol=tol),
                "per-item values differ")


def check_metric(cls: type[Metric], ctx: EvalContext | None = None) -> Report:
    """Check the Metric contract on perfect and noisy predictions."""
    ds = tiny_dataset()
    rep = Report(f"metric {getattr(cls, 'name', cls)}")
    m = rep.check("instantiates", cls)
    if m is None:
        return rep.raise_if_failed()
    rep.check("declares name, unit, direction, description", lambda: _assert(
        bool(cls.name and cls.description) and cls.direction in ("lower", "higher") and isinstance(cls.unit, str),
        f"direction={cls.direction!r}"))
    ctx = ctx or EvalContext(ds.topology, ds.labels, seed=0)
    rng = np.random.default_rng(0)
    good = _metric_items(ds, rng, 0.0)
    bad = _metric_items(ds, rng, 3.0)
    if not m.applicable(bad, ctx):
        rep.failed.append(("applicable", f"needs {sorted(cls.requires)} which the kit's context lacks; "
                           "pass ctx= with a classifier"))
        return rep.raise_if_failed()
    v_bad = rep.check("compute", lambda: m.compute(bad, ctx))
    if v_bad is not None:
        rep.check("returns MetricValue with a finite value", lambda: _assert(
            isinstance(v_bad, MetricValue) and np.isfinite(v_bad.value), f"got {v_bad!r}"))
        rep.check("deterministic", lambda: _assert(m.compute(bad, ctx).value == v_bad.value, "differs"))
        if v_bad.per_item is not None:
            rep.check("per_item has one value per item", lambda: _assert(len(v_bad.per_item) == len(bad), "length"))
        rep.check("scored in chunks (summarize each, finalize once) equals scored at once",
                  lambda: _check_streamed(m, bad, ctx, v_bad))
        v_good = rep.check("compute on perfect predictions", lambda: m.compute(good, ctx))
        if v_good is not None and "samples" not in cls.requires:
            better = v_good.value <= v_bad.value if cls.direction == "lower" else v_good.value >= v_bad.value
            rep.check("perfect predictions score at least as well as noisy ones", lambda: _assert(
                better, f"perfect {v_good.value:.4g} vs noisy {v_bad.value:.4g} ({cls.direction} is better)"))
    return rep.raise_if_failed()
