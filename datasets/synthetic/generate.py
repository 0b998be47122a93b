"""The generator proper: config -> a stream of identities and sequences (no I/O here)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterator

import numpy as np

from fc4dfs.datasets.synthetic.expressions import (ACTION_LAG, FaceActions, Style, apply_actions,
                                                   label_catalog, recipe, sample_style)
from fc4dfs.datasets.synthetic.identity import Face, IdentityParams, sample_identity
from fc4dfs.datasets.synthetic.template import RESOLUTIONS, Template, build_template
from fc4dfs.datasets.synthetic.timing import envelope, plan_timing

KINDS = ("n2e", "n2e2n")


@dataclass(frozen=True)
class SyntheticConfig:
    """Everything that determines the generated data (hashed into the cache key)."""

    identities: int = 12
    expressions: int = 12
    repetitions: int = 2
    kinds: tuple[str, ...] = KINDS
    resolution: str = "default"
    fps: tuple[float, ...] = (15.0, 20.0, 25.0, 30.0)
    seed: int = 0
    noise: float = 0.0
    labels: tuple[str, ...] = field(default=())  # explicit labels (overrides ``expressions``)

    def __post_init__(self) -> None:
        kinds = (self.kinds,) if isinstance(self.kinds, str) else tuple(self.kinds)
        fps = (self.fps,) if isinstance(self.fps, (int, float)) else tuple(float(f) for f in self.fps)
        labels = (self.labels,) if isinstance(self.labels, str) else tuple(self.labels)
        object.__setattr__(self, "kinds", kinds)
        object.__setattr__(self, "fps", fps)
        object.__setattr__(self, "labels", labels)
        checks = [
            (isinstance(self.identities, int) and self.identities >= 4, "identities must be an int >= 4 (4 folds)"),
            (isinstance(self.expressions, int) and self.expressions >= 1, "expressions must be an int >= 1"),
            (isinstance(self.repetitions, int) and self.repetitions >= 1, "repetitions must be an int >= 1"),
            (bool(kinds) and all(k in KINDS for k in kinds), f"kinds must be drawn from {KINDS}"),
            (self.resolution in RESOLUTIONS, f"resolution must be one of {', '.join(RESOLUTIONS)}"),
            (bool(fps) and all(f > 0 for f in fps), "fps must be positive frame rates"),
            (isinstance(self.seed, int), "seed must be an int"),
            (self.noise >= 0, "noise must be >= 0 (mm)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"synthetic dataset: {msg}")
        for lab in labels:
            recipe(lab)  # raises KeyError for an unknown label

    @property
    def label_names(self) -> list[str]:
        return list(self.labels) if self.labels else label_catalog(self.expressions)

    @property
    def identity_names(self) -> list[str]:
        return [f"synth{k:03d}" for k in range(self.identities)]

    @property
    def num_sequences(self) -> int:
        return self.identities * len(self.label_names) * self.repetitions

    def as_dict(self) -> dict:
        d = asdict(self)
        d["kinds"], d["fps"], d["labels"] = list(self.kinds), list(self.fps), list(self.labels)
        return d


@dataclass
class Identity:
    name: str
    params: IdentityParams
    style: Style
    face: Face
    actions: FaceActions


@dataclass
class GeneratedSequence:
    identity: str
    label: str
    kind: str
    fps: float
    frames: np.ndarray  # [T, V, 3] float32
    meta: dict


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


def make_identity(config: SyntheticConfig, index: int, tpl: Template | None = None) -> Identity:
    """Identity ``index`` of a config (independent of how many identities the config holds)."""
    tpl = tpl or build_template(config.resolution)
    params = sample_identity(_rng(config.seed, 1, index, 0))
    face = Face(tpl, params, _rng(config.seed, 1, index, 1))
    style = sample_style(params, _rng(config.seed, 1, index, 2))
    return Identity(config.identity_names[index], params, style, face, FaceActions(face, style))


def make_sequence(config: SyntheticConfig, ident: Identity, index: int, label: str,
                  repetition: int) -> GeneratedSequence:
    """One sequence of ``label`` performed by ``ident``."""
    label_idx = _label_index(label)
    kind = config.kinds[label_idx % len(config.kinds)]
    rng = _rng(config.seed, 2, index, label_idx, repetition)
    style = ident.style
    actions = style.performed(label)
    lags = {a: ACTION_LAG[a.partition("@")[0]] * style.lag_scale for a in actions}
    timing = plan_timing(kind, config.fps, style, max(lags.values()), rng)
    label_gain = 1.0 + 0.08 * _rng(config.seed, 3, index, label_idx).normal()
    intensity = label_gain * rng.uniform(0.93, 1.07)
    names = list(actions)
    amounts = np.stack([actions[a] * ident.actions.gain(a) * intensity * envelope(timing, lags[a])
                        for a in names], 1)
    fields = [ident.actions.field(a) for a in names]
    frames = apply_actions(ident.face.neutral, fields, amounts, ident.face.skin, ident.face.normals)
    rest = ~amounts.any(axis=1)  # frames where every action is at rest are exactly the neutral
    frames[rest] = ident.face.neutral.astype(np.float32)
    if config.noise > 0:
        frames[1:] += rng.normal(scale=config.noise, size=frames[1:].shape).astype(np.float32)
    apex_frame = int(round(timing.apex * timing.duration * timing.fps))
    meta = {"repetition": repetition, "duration": timing.duration, "apex_frame": apex_frame,
            "timing": timing.as_dict(), "intensity": float(intensity)}
    return GeneratedSequence(ident.name, label, kind, timing.fps, frames, meta)


def _label_index(label: str) -> int:
    from fc4dfs.datasets.synthetic.expressions import NAMED_LABELS

    if label in NAMED_LABELS:
        return NAMED_LABELS.index(label)
    return int(label[3:])


def generate(config: SyntheticConfig) -> Iterator[tuple[Identity, Iterator[GeneratedSequence]]]:
    """Yield each identity with a lazy stream of its sequences (label-major, then repetition)."""
    tpl = build_template(config.resolution)
    labels = config.label_names
    for k in range(config.identities):
        ident = make_identity(config, k, tpl)

        def seqs(ident: Identity = ident, k: int = k) -> Iterator[GeneratedSequence]:
            for lab in labels:
                for r in range(config.repetitions):
                    yield make_sequence(config, ident, k, lab, r)

        yield ident, seqs()

