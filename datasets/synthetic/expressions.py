"""Expressions: localised facial actions (FACS-like) combined into labelled expressions.

Each *action* is evaluated on one identity's :class:`~fc4dfs.datasets.synthetic.identity.Face`
into a field: a displacement per unit amount (and per squared amount, for motions that bend
with intensity) plus rotations of weighted regions about anatomical pivots (the jaw about the
temporomandibular joint, the lips about their roots, the scalp about the skull). Amplitudes
and regions come from the identity's geometry, so the same label deforms two faces differently.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from fc4dfs.datasets.synthetic import template as tp
from fc4dfs.datasets.synthetic.identity import Face, IdentityParams, _smooth, below_weight

#: CoMA's twelve expression names (the default label set)
COMA_LABELS = ("bareteeth", "cheeks_in", "eyebrow", "high_smile", "lips_back", "lips_up",
               "mouth_down", "mouth_extreme", "mouth_middle", "mouth_open", "mouth_side", "mouth_up")


@dataclass
class Rotation:
    """Rotate vertices about an axis through ``pivot``: angle = amount * ``weight`` (radians)."""

    axis: str                 # "x" (pitch) or "y" (yaw)
    pivot: np.ndarray         # [3]
    weight: np.ndarray        # [V]
    order: int = 0            # rotations apply in increasing order (lips, scalp, jaw)


@dataclass
class ActionField:
    """One action evaluated on one face."""

    linear: np.ndarray | None = None      # [V, 3] mm per unit amount
    quadratic: np.ndarray | None = None   # [V, 3] mm per squared amount
    rotations: list[Rotation] = field(default_factory=list)
    region: np.ndarray | None = None      # [V] in [0, 1]: where a unit amount moves the face


#: seconds each action lags the expression onset (muscles do not fire together)
ACTION_LAG = {
    "jaw_open": 0.0, "jaw_slide": 0.0, "lip_corner_pull": 0.05, "cheek_raise": 0.09,
    "lid_tighten": 0.07, "eye_widen": 0.03, "eye_close": 0.02, "brow_raise": 0.04,
    "brow_lower": 0.04, "lip_stretch": 0.03, "upper_lip_raise": 0.04, "lower_lip_depress": 0.03,
    "lip_corner_depress": 0.05, "chin_raise": 0.06, "lip_pucker": 0.03, "lip_roll_in": 0.05,
    "lip_press": 0.04, "cheek_suck": 0.08, "cheek_puff": 0.07, "mouth_shift": 0.02,
    "nose_wrinkle": 0.05,
}
#: how much the neutral fine relief deepens under a fully active action (x its own height)
SKIN_RESPONSE = 1.5
UPPER_FACE = {"cheek_raise", "lid_tighten", "eye_widen", "eye_close", "brow_raise", "brow_lower",
              "nose_wrinkle"}
ACTIONS = tuple(ACTION_LAG)

#: label -> {action (optionally "@L"/"@R" for one side only): strength at the apex}
RECIPES: dict[str, dict[str, float]] = {
    "bareteeth": {"lip_stretch": 0.8, "upper_lip_raise": 1.0, "lower_lip_depress": 1.0,
                  "jaw_open": 0.14, "cheek_raise": 0.3},
    "cheeks_in": {"cheek_suck": 1.0, "lip_pucker": 0.55, "jaw_open": 0.05},
    "eyebrow": {"brow_raise": 1.0, "eye_widen": 0.5},
    "high_smile": {"lip_corner_pull": 1.0, "cheek_raise": 1.0, "lid_tighten": 0.5, "jaw_open": 0.12,
                   "upper_lip_raise": 0.25},
    "lips_back": {"lip_roll_in": 1.0, "lip_stretch": 0.35, "chin_raise": 0.3},
    "lips_up": {"upper_lip_raise": 0.6, "chin_raise": 0.8, "lip_pucker": 0.5, "nose_wrinkle": 0.4},
    "mouth_down": {"lip_corner_depress": 1.0, "chin_raise": 0.6, "brow_lower": 0.3},
    "mouth_extreme": {"jaw_open": 1.0, "lip_stretch": 0.9, "brow_raise": 0.6, "eye_widen": 0.8,
                      "lower_lip_depress": 0.4},
    "mouth_middle": {"lip_pucker": 1.0, "jaw_open": 0.12, "lip_press": 0.2},
    "mouth_open": {"jaw_open": 0.62, "brow_raise": 0.15},
    "mouth_side": {"mouth_shift": 1.0, "jaw_slide": 1.0, "lip_corner_pull@L": 0.35},
    "mouth_up": {"chin_raise": 1.0, "lip_press": 0.8, "lip_corner_depress": 0.3},
    # further named expressions (basic emotions and facial gestures, FACS recipes)
    "happy": {"lip_corner_pull": 0.8, "cheek_raise": 0.7, "lid_tighten": 0.3},
    "sad": {"brow_raise": 0.35, "brow_lower": 0.55, "lip_corner_depress": 0.8, "chin_raise": 0.35},
    "surprise": {"brow_raise": 1.0, "eye_widen": 1.0, "jaw_open": 0.45},
    "fear": {"brow_raise": 0.7, "brow_lower": 0.4, "eye_widen": 1.0, "lip_stretch": 0.7,
             "jaw_open": 0.2},
    "anger": {"brow_lower": 1.0, "lid_tighten": 0.8, "lip_press": 0.8, "chin_raise": 0.3},
    "disgust": {"nose_wrinkle": 1.0, "upper_lip_raise": 0.8, "lower_lip_depress": 0.3,
                "brow_lower": 0.4},
    "contempt": {"lip_corner_pull@L": 0.7, "lip_press": 0.2},
    "kiss": {"lip_pucker": 1.0, "lip_press": 0.4},
    "blink": {"eye_close": 1.0},
    "wink": {"eye_close@L": 1.0, "cheek_raise@L": 0.3, "lip_corner_pull@L": 0.2},
    "puff": {"cheek_puff": 1.0, "lip_press": 0.6},
    "jaw_left": {"jaw_slide": 1.0, "jaw_open": 0.08},
}
NAMED_LABELS = tuple(RECIPES)

#: label -> synonyms for text control (Zou et al. §5.2); the label's own words come first in
#: :meth:`Dataset.label_texts`, so a text is never the label's identifier. Part of the dataset:
#: changing it changes what a text-guided model learns (bump SYNTHETIC_VERSION).
DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "bareteeth": ("bared teeth", "showing the teeth"),
    "cheeks_in": ("sucked in cheeks", "hollow cheeks"),
    "eyebrow": ("raised eyebrows", "eyebrows up"),
    "high_smile": ("big smile", "broad grin"),
    "lips_back": ("lips rolled in", "tucked lips"),
    "lips_up": ("upper lip raised", "lips pushed up"),
    "mouth_down": ("mouth corners down", "downturned mouth"),
    "mouth_extreme": ("mouth stretched wide open", "screaming face"),
    "mouth_middle": ("puckered lips", "pursed lips"),
    "mouth_open": ("open mouth", "jaw dropped"),
    "mouth_side": ("mouth pulled to the side", "sideways mouth"),
    "mouth_up": ("raised chin", "mouth pushed up"),
    "happy": ("happy face", "joyful smile"),
    "sad": ("sad face", "sorrowful look"),
    "surprise": ("surprised face", "astonished look"),
    "fear": ("fearful face", "scared look"),
    "anger": ("angry face", "furious frown"),
    "disgust": ("disgusted face", "wrinkled nose"),
    "contempt": ("contemptuous smirk", "one-sided smirk"),
    "kiss": ("lips puckered for a kiss", "blowing a kiss"),
    "blink": ("eyes closed", "closing the eyes"),
    "wink": ("one eye closed", "winking eye"),
    "puff": ("puffed cheeks", "cheeks blown out"),
    "jaw_left": ("jaw moved left", "jaw to the left"),
}


def descriptions(label: str) -> tuple[str, ...]:
    """Synonyms of ``label``; a procedural mix is described by its two strongest actions."""
    if label in DESCRIPTIONS:
        return DESCRIPTIONS[label]
    top = sorted(recipe(label).items(), key=lambda kv: -kv[1])[:2]
    return (" and ".join(a.partition("@")[0].replace("_", " ") for a, _ in top),)


@lru_cache(maxsize=None)
def recipe(label: str) -> dict[str, float]:
    """The action recipe of ``label``: a named one, or a procedural mix ``mixNNN``."""
    if label in RECIPES:
        return RECIPES[label]
    if label.startswith("mix") and label[3:].isdigit():
        rng = np.random.default_rng([0x5EED, int(label[3:])])
        base = [a for a in ACTIONS if a not in ("jaw_slide", "mouth_shift")]
        k = int(rng.integers(2, 5))
        chosen = rng.choice(len(base), size=k, replace=False)
        out = {base[i]: float(rng.uniform(0.3, 1.0)) for i in sorted(chosen)}
        if "jaw_open" in out:
            out["jaw_open"] *= 0.5
        return out
    raise KeyError(f"unknown synthetic expression {label!r}")


def label_catalog(count: int) -> list[str]:
    """The first ``count`` labels: CoMA's twelve, further named ones, then procedural mixes."""
    if count < 1:
        raise ValueError(f"expressions must be >= 1, got {count}")
    named = list(NAMED_LABELS)
    if count <= len(named):
        return named[:count]
    return named + [f"mix{k:03d}" for k in range(len(named), count)]


# ---------------------------------------------------------------------------------- style
@dataclass(frozen=True)
class Style:
    """How one identity performs expressions (partly predictable from its face shape)."""

    lower_gain: float
    upper_gain: float
    asymmetry: float      # >0: the subject's left side moves more
    tempo: float          # duration multiplier
    ease: float           # easing steepness
    onset_bias: float     # shifts the apex earlier (<0) or later (>0), fraction of the duration
    overshoot: float      # damped overshoot at the apex (fraction)
    lag_scale: float      # multiplies the action lags
    action_gain: dict[str, float] = field(default_factory=dict)   # per-action habits
    coactivation: dict[str, tuple[str, float]] = field(default_factory=dict)  # label -> extra action

    def as_dict(self) -> dict:
        out = {k: float(getattr(self, k)) for k in self.__dataclass_fields__
               if k not in ("action_gain", "coactivation")}
        out["action_gain"] = dict(self.action_gain)
        out["coactivation"] = {k: [a, float(v)] for k, (a, v) in self.coactivation.items()}
        return out

    def performed(self, label: str) -> dict[str, float]:
        """The label's recipe as this identity performs it (habitual gains, co-activations)."""
        out = {a: v * self.action_gain.get(a.partition("@")[0], 1.0) for a, v in recipe(label).items()}
        extra = self.coactivation.get(label)
        if extra is not None and extra[0] not in out:
            out[extra[0]] = extra[1]
        return out


def sample_style(params: IdentityParams, rng: np.random.Generator) -> Style:
    """Draw an identity's style: gains follow mouth width and brow height, plus noise."""
    return Style(
        lower_gain=float(1.0 + 0.18 * (params.mouth_scale - 1.0) / 0.12 + 0.08 * rng.normal()),
        upper_gain=float(1.0 + 0.15 * (params.brow_height - 17.0) / 3.5 + 0.08 * rng.normal()),
        asymmetry=float(0.1 * params.asymmetry + 0.04 * rng.normal()),
        tempo=float(rng.uniform(0.85, 1.2)),
        ease=float(rng.uniform(1.6, 2.6)),
        onset_bias=float(rng.uniform(-0.08, 0.08)),
        overshoot=float(rng.uniform(0.0, 0.06)),
        lag_scale=float(rng.uniform(0.5, 1.5)),
        action_gain={a: float(np.clip(1.0 + 0.2 * rng.normal(), 0.55, 1.45)) for a in ACTIONS},
        coactivation=_coactivations(rng),
    )


def _coactivations(rng: np.random.Generator) -> dict[str, tuple[str, float]]:
    """Habitual extra actions: for about a third of the named labels, one more action."""
    pool = [a for a in ACTIONS if a not in ("jaw_slide", "mouth_shift", "eye_close")]
    out = {}
    for lab in NAMED_LABELS:
        pick = rng.random() < 0.35
        action = pool[int(rng.integers(len(pool)))]
        strength = float(rng.uniform(0.15, 0.4))
        if pick:
            out[lab] = (action, strength)
    return out


# ---------------------------------------------------------------------------------- fields
class FaceActions:
    """Evaluates actions on one face (fields are cached per action and side)."""

    def __init__(self, face: Face, style: Style) -> None:
        self.face = face
        self.style = style
        tpl, a, p = face.tpl, face.anchors, face.params
        self.mw = a.mouth_width
        self.below_mouth = below_weight(tpl, tp.MOUTH, tp.V_MOUTH, 0.0, tp.U_MOUTH)
        ec, hw = tpl.eye_centre, tpl.eye_half_width
        below_eye = np.zeros(tpl.num_vertices)
        for sid in (tp.EYE_R, tp.EYE_L):
            below_eye += below_weight(tpl, sid, tp.V_EYE, ec, hw) * (np.sign(tpl.u) == (1 if sid == tp.EYE_L else -1))
        lid_window = (np.exp(-((np.abs(tpl.u) - ec) / (1.15 * hw)) ** 4)
                      * np.exp(-((tpl.v - tp.V_EYE) / 0.11) ** 2))
        self.lid_up = (1.0 - below_eye) * lid_window
        self.lid_low = below_eye * lid_window
        x, y = face.x, face.y
        lip_x = np.exp(-(x / (0.55 * self.mw)) ** 4)
        self.upper_lip = (1.0 - self.below_mouth) * lip_x * np.exp(
            -(np.maximum(y - a.mouth[1], 0.0) / (p.lip_upper + 0.6 * p.philtrum)) ** 2)
        self.lower_lip = self.below_mouth * lip_x * np.exp(
            -(np.maximum(a.mouth[1] - y, 0.0) / (p.lip_lower + 3.0)) ** 2)
        self.lips = self.upper_lip + self.lower_lip
        self._cache: dict[str, ActionField] = {}

    def field(self, name: str) -> ActionField:
        """The field of action ``name`` (``"action@L"``/``"action@R"``: one side only)."""
        if name not in self._cache:
            base, _, only = name.partition("@")
            if base not in ACTION_LAG:
                raise KeyError(f"unknown facial action {base!r}")
            f = getattr(self, "_" + base)()
            gain = self.face.side_gain(self.style.asymmetry)
            if only:
                sgn = 1.0 if only == "L" else -1.0
                gain = gain * _smooth(0.5 + sgn * self.face.x / 20.0)
            f = _scale(self._with_region(f), gain)
            self._cache[name] = f
        return self._cache[name]

    def gain(self, action: str) -> float:
        base = action.partition("@")[0]
        return self.style.upper_gain if base in UPPER_FACE else self.style.lower_gain

    # -- helpers ------------------------------------------------------------------------
    def _g(self, centre: np.ndarray, sx: float, sy: float) -> np.ndarray:
        """A soft-tissue region: its spread grows with the identity's tissue thickness."""
        t = self.face.params.tissue
        return self.face.gauss(centre, sx * t, sy * t)

    def _with_region(self, f: ActionField) -> ActionField:
        """Record where a unit amount of the action moves the face (for the skin response)."""
        moved = apply_actions(self.face.neutral, [f], np.ones((1, 1)))[0] - self.face.neutral
        mag = np.linalg.norm(moved, axis=1)
        region = np.clip(mag / (np.percentile(mag, 99) + 1e-9), 0.0, 1.0)
        return ActionField(f.linear, f.quadratic, f.rotations, region.astype(np.float32))

    def _vec(self, mask: np.ndarray, dx=0.0, dy=0.0, dz=0.0) -> np.ndarray:
        out = np.zeros((len(mask), 3))
        out[:, 0], out[:, 1], out[:, 2] = mask * dx, mask * dy, mask * dz
        return out

    def _detail(self, name: str, factor: float) -> np.ndarray:
        """Deepen a named detail field along the normal: ``factor`` x its neutral amplitude."""
        amp, fld = self.face.detail[name]
        return self.face.normals * (factor * amp * fld)[:, None]

    def _sides(self):
        a = self.face.anchors
        return ((-1.0, a.corner_r, a.cheek_r, a.eye_r, a.brow_r), (1.0, a.corner_l, a.cheek_l, a.eye_l, a.brow_l))

    # -- the actions --------------------------------------------------------------------
    def _jaw_open(self) -> ActionField:
        glide = self._vec(self.below_mouth, 0.0, -0.4 * self.face.params.jaw_glide, self.face.params.jaw_glide)
        return ActionField(glide, rotations=[Rotation("x", self.face.anchors.jaw_pivot, 0.40 * self.below_mouth, order=3)])

    def _jaw_slide(self) -> ActionField:
        piv = self.face.anchors.jaw_pivot + np.array([0.0, 0.0, -10.0])
        return ActionField(rotations=[Rotation("y", piv, 0.085 * self.below_mouth, order=2)])

    def _lip_corner_pull(self) -> ActionField:
        f, mw, cf = self.face, self.mw, self.face.params.cheek_fullness
        lin = np.zeros((len(f.x), 3))
        quad = np.zeros_like(lin)
        for s, corner, cheek, _, _ in self._sides():
            m = self._g(corner, 0.32 * mw, 0.26 * mw)
            lin += self._vec(m, s * 0.17 * mw, 0.11 * mw, -0.05 * mw)
            quad += self._vec(m, 0.0, 0.02 * mw, -0.05 * mw)
            bulge = self._g(cheek + np.array([0.0, -12.0, 0.0]), 16.0, 14.0)
            lin += self._vec(bulge, s * 1.0, 2.0, 1.5 + 0.3 * cf)
        lin += self._detail("nasolabial", 2.5)
        return ActionField(lin, quad)

    def _cheek_raise(self) -> ActionField:
        f, cf = self.face, self.face.params.cheek_fullness
        lin = np.zeros((len(f.x), 3))
        for s, _, cheek, _, _ in self._sides():
            m = self._g(cheek + np.array([0.0, -6.0, 0.0]), 17.0, 14.0)
            lin += self._vec(m, 0.0, 2.5 + 0.45 * cf, 1.0 + 0.25 * cf)
        lin += self._vec(self.lid_low, 0.0, 2.2, 0.5)
        lin += self._detail("crows_feet", 3.0)
        return ActionField(lin)

    def _lid_tighten(self) -> ActionField:
        lin = self._vec(self.lid_low, 0.0, 0.3 * self.face.params.eye_open, 0.3)
        lin += self._vec(self.lid_up, 0.0, -0.12 * self.face.params.eye_open)
        lin += self._detail("crows_feet", 1.5)
        return ActionField(lin)

    def _eye_widen(self) -> ActionField:
        eo = self.face.params.eye_open
        return ActionField(self._vec(self.lid_up, 0.0, 0.35 * eo, 0.4) + self._vec(self.lid_low, 0.0, -0.1 * eo))

    def _eye_close(self) -> ActionField:
        eo = self.face.params.eye_open
        lin = self._vec(self.lid_up, 0.0, -0.64 * eo, 0.8) + self._vec(self.lid_low, 0.0, 0.34 * eo)
        return ActionField(lin)

    def _brow_raise(self) -> ActionField:
        f, tpl, a = self.face, self.face.tpl, self.face.anchors
        v, au = tpl.v, np.abs(tpl.u)
        rise = _smooth((v - tp.V_EYE) / (tp.V_BROW - tp.V_EYE + 0.02))
        fall = 1.0 - 0.65 * _smooth((v - tp.V_BROW) / (1.0 - tp.V_BROW))
        lateral = 1.0 - _smooth((au - 0.62) / 0.3)
        mask = (rise * fall + 0.3 * self.lid_up) * lateral
        radius = float(np.linalg.norm(a.brow_l - a.skull_centre))
        lift = 0.5 * f.params.brow_height
        rot = Rotation("x", a.skull_centre, -(lift / radius) * mask, order=1)
        return ActionField(self._detail("forehead_lines", 3.5), rotations=[rot])

    def _brow_lower(self) -> ActionField:
        f = self.face
        lin = np.zeros((len(f.x), 3))
        for s, _, _, eye, brow in self._sides():
            m = self._g(brow + np.array([-s * 6.0, 0.0, 0.0]), 17.0, 9.0)
            lin += self._vec(m, -s * 3.0, -4.0, 1.0)
        lin += self._vec(0.3 * self.lid_up, 0.0, -1.5)
        lin += self._detail("glabella", 3.5)
        return ActionField(lin)

    def _lip_stretch(self) -> ActionField:
        f, a, mw = self.face, self.face.anchors, self.mw
        m = self._g(a.mouth, 0.62 * mw, 15.0)
        lin = np.zeros((len(f.x), 3))
        lin[:, 0] = 0.27 * (f.x - a.mouth[0]) * m
        lin[:, 1] = -0.28 * (f.y - a.mouth[1]) * self.lips
        lin[:, 2] = -2.5 * m
        quad = self._vec(m * (f.x / (0.5 * mw)) ** 2, 0.0, 0.0, -2.0)
        return ActionField(lin, quad)

    def _upper_lip_raise(self) -> ActionField:
        f, a, p = self.face, self.face.anchors, self.face.params
        piv = np.array([0.0, a.nose_base[1] - 2.0, a.mouth[2] - 9.0])
        lin = np.zeros((len(f.x), 3))
        for s in (-1.0, 1.0):
            ala = np.array([s * (p.nose_width / 2 - 4.0), a.nose_base[1] + 4.0])
            lin += self._vec(self._g(ala, 8.0, 7.0), 0.0, 1.8, 0.5)
        lin += self._vec(self.upper_lip, 0.0, 0.12 * p.philtrum)
        lin += self._detail("nasolabial", 1.5)
        return ActionField(lin, rotations=[Rotation("x", piv, -0.32 * self.upper_lip)])

    def _lower_lip_depress(self) -> ActionField:
        a, p = self.face.anchors, self.face.params
        piv = np.array([0.0, a.mouth[1] - p.lip_lower - 7.0, a.mouth[2] - 11.0])
        lin = self._vec(self.lower_lip, 0.0, -2.5, 0.0)
        return ActionField(lin, rotations=[Rotation("x", piv, 0.38 * self.lower_lip)])

    def _lip_corner_depress(self) -> ActionField:
        f, mw = self.face, self.mw
        lin = np.zeros((len(f.x), 3))
        for s, corner, _, _, _ in self._sides():
            m = self._g(corner + np.array([0.0, -4.0, 0.0]), 0.26 * mw, 0.3 * mw)
            lin += self._vec(m, s * 0.03 * mw, -0.16 * mw, -1.0)
        return ActionField(lin, self._vec(self._g(self.face.anchors.mouth, 0.6 * mw, 12.0), 0.0, 0.0, 1.0))

    def _chin_raise(self) -> ActionField:
        f, a = self.face, self.face.anchors
        chin = self._g(a.chin, 21.0, 16.0) * self.below_mouth
        lin = self._vec(chin, 0.0, 5.5, 3.0) + self._vec(self.lower_lip, 0.0, 3.5, 3.0)
        lin += self._detail("chin_dimples", 3.0)
        return ActionField(lin)

    def _lip_pucker(self) -> ActionField:
        f, a, p = self.face, self.face.anchors, self.face.params
        m = np.clip(self.lips * 1.3, 0, 1) * self._g(a.mouth, 0.8 * self.mw, 30.0)
        lin = np.zeros((len(f.x), 3))
        lin[:, 0] = -0.3 * (f.x - a.mouth[0]) * m
        lin[:, 1] = -0.1 * (f.y - a.mouth[1]) * m
        lin[:, 2] = (4.0 + 0.6 * p.lip_protrusion) * m
        return ActionField(lin, self._vec(m, 0.0, 0.0, 1.5))

    def _lip_roll_in(self) -> ActionField:
        a, p = self.face.anchors, self.face.params
        up = np.array([0.0, a.mouth[1] + p.lip_upper + 3.0, a.mouth[2] - 8.0])
        low = np.array([0.0, a.mouth[1] - p.lip_lower - 3.0, a.mouth[2] - 8.0])
        lin = self._vec(self.lips, 0.0, 0.0, -2.0)
        return ActionField(lin, rotations=[Rotation("x", up, 0.55 * self.upper_lip),
                                           Rotation("x", low, -0.55 * self.lower_lip)])

    def _lip_press(self) -> ActionField:
        f, a = self.face, self.face.anchors
        lin = np.zeros((len(f.x), 3))
        lin[:, 1] = -0.3 * (f.y - a.mouth[1]) * self.lips
        lin[:, 2] = -1.5 * self.lips
        return ActionField(lin)

    def _cheek_suck(self) -> ActionField:
        f, cf = self.face, self.face.params.cheek_fullness
        m = sum(self._g(cheek + np.array([s * 4.0, -26.0, 0.0]), 15.0, 15.0)
                for s, _, cheek, _, _ in self._sides())
        return ActionField(-f.normals * ((4.0 + 0.8 * cf) * m)[:, None])

    def _cheek_puff(self) -> ActionField:
        f, cf = self.face, self.face.params.cheek_fullness
        m = sum(self._g(cheek + np.array([0.0, -22.0, 0.0]), 20.0, 19.0)
                for s, _, cheek, _, _ in self._sides())
        return ActionField(f.normals * ((5.0 + 0.4 * cf) * m)[:, None])

    def _mouth_shift(self) -> ActionField:
        f, a, mw = self.face, self.face.anchors, self.mw
        m = self._g(a.mouth, 0.75 * mw, 17.0)
        lin = self._vec(m, 0.17 * mw, 0.0, 0.0)
        lin += self._vec(self._g(a.corner_l, 0.25 * mw, 0.25 * mw), 0.0, 1.5, -2.0)
        return ActionField(lin)

    def _nose_wrinkle(self) -> ActionField:
        f, a, p = self.face, self.face.anchors, self.face.params
        lin = np.zeros((len(f.x), 3))
        for s in (-1.0, 1.0):
            side = np.array([s * (p.nose_width / 2 - 6.0), a.nose_base[1] + 10.0])
            lin += self._vec(self._g(side, 9.0, 12.0), -s * 0.5, 2.5, 0.5)
        lin += self._vec(self.upper_lip, 0.0, 1.0)
        lin += self._detail("glabella", 1.5)
        return ActionField(lin)


def _scale(f: ActionField, gain: np.ndarray) -> ActionField:
    return ActionField(None if f.linear is None else (f.linear * gain[:, None]).astype(np.float32),
                       None if f.quadratic is None else (f.quadratic * gain[:, None]).astype(np.float32),
                       [Rotation(r.axis, r.pivot, r.weight * gain, r.order) for r in f.rotations],
                       f.region)


def apply_actions(neutral: np.ndarray, fields: list[ActionField], amounts: np.ndarray,
                  skin: np.ndarray | None = None, normals: np.ndarray | None = None) -> np.ndarray:
    """Frames ``[T, V, 3]`` float32 from per-frame action amounts ``[T, K]``.

    Displacements add first, then the skin response: where the active actions move the face,
    the identity's neutral fine relief ``skin`` [V] (mm along ``normals``) deepens by up to
    ``SKIN_RESPONSE`` times itself, saturating where several actions overlap. Rotations follow
    in order (lips, then the scalp, then the jaw, so lips and relief ride along with the jaw).
    Plain element-wise float32 arithmetic: no BLAS call, whose thread pool crawls on a busy
    machine.
    """
    t_len = amounts.shape[0]
    frames = np.empty((t_len,) + neutral.shape, dtype=np.float32)
    frames[:] = neutral.astype(np.float32)
    amounts = amounts.astype(np.float32)
    activity = None
    for k, f in enumerate(fields):
        a = amounts[:, k, None, None]
        if f.linear is not None:
            frames += a * np.asarray(f.linear, dtype=np.float32)
        if f.quadratic is not None:
            frames += (a * a) * np.asarray(f.quadratic, dtype=np.float32)
        if skin is not None and f.region is not None:
            act = np.abs(amounts[:, k, None]) * f.region[None]
            activity = act if activity is None else activity + act
    if activity is not None:
        depth = (SKIN_RESPONSE * np.tanh(activity) * skin.astype(np.float32)[None])
        frames += depth[..., None] * normals.astype(np.float32)[None]
    rots = sorted(((k, r) for k, f in enumerate(fields) for r in f.rotations), key=lambda kr: kr[1].order)
    for k, r in rots:
        idx = np.nonzero(np.abs(r.weight) > 1e-5)[0]
        if len(idx) == 0 or not np.any(amounts[:, k]):
            continue
        ang = amounts[:, k, None] * r.weight[None, idx].astype(np.float32)
        c, s = np.cos(ang), np.sin(ang)
        pts = frames[:, idx]
        if r.axis == "x":
            a1, a2, p1, p2 = 1, 2, r.pivot[1], r.pivot[2]
        else:  # yaw: x' = c x + s z, z' = -s x + c z
            a1, a2, p1, p2 = 2, 0, r.pivot[2], r.pivot[0]
        r1, r2 = pts[..., a1] - np.float32(p1), pts[..., a2] - np.float32(p2)
        pts[..., a1] = p1 + c * r1 - s * r2
        pts[..., a2] = p2 + s * r1 + c * r2
        frames[:, idx] = pts
    return frames
