"""Identities: a parametric face-shape space mapped onto the template, plus random shape and detail.

A :class:`Face` is one identity's neutral geometry together with everything the expressions
need to deform it: anchor points of the features (in mm), masks, vertex normals and the fine
surface-detail fields (wrinkles, folds) that expressions deepen.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fc4dfs.datasets.synthetic import template as tp
from fc4dfs.datasets.synthetic.template import Template

PHI_MAX = 1.45  # radians of head wrap at u = +-1


@dataclass(frozen=True)
class IdentityParams:
    """The shape parameters of one identity (lengths in mm, warps in canonical units)."""

    face_width: float        # cheekbone width
    jaw_width: float         # jaw-angle width relative to face_width
    chin_width: float        # chin width relative to face_width
    depth: float             # head depth relative to width
    eye_height: float        # distance from the mouth slit up to the eye line
    chin_length: float       # mouth slit down to the chin bottom
    forehead: float          # brows up to the hairline
    brow_height: float       # eye line up to the brows
    nose_length: float       # nasion down to the nose base
    philtrum: float          # nose base down to the upper lip border
    lip_upper: float         # upper vermilion height
    lip_lower: float         # lower vermilion height
    nose_protrusion: float
    nose_width: float        # alar width
    eye_shift: float         # canonical outward shift of the eyes (eye spacing)
    eye_scale: float         # canonical scale of the eye region
    eye_open: float          # lid opening
    mouth_scale: float       # canonical scale of the mouth region (mouth width)
    lip_protrusion: float
    cheek_fullness: float
    muzzle: float            # forward bulge of the dental arch
    chin_protrusion: float
    forehead_slope: float
    brow_ridge: float
    asymmetry: float         # signed left/right asymmetry of the face (also drives expression style)
    jaw_pivot: float         # height offset of the jaw joint (mm; changes the chin's path)
    jaw_glide: float         # forward slide of the jaw joint as the mouth opens (mm at full opening)
    tissue: float            # soft-tissue thickness: spread of every expression's deformation

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


#: (mean, half-range) of each parameter; values are drawn uniformly, a few pairs correlated
PARAM_RANGES: dict[str, tuple[float, float]] = {
    "face_width": (142.0, 12.0), "jaw_width": (0.82, 0.07), "chin_width": (0.33, 0.06),
    "depth": (0.92, 0.08), "eye_height": (66.0, 6.0), "chin_length": (46.0, 7.0),
    "forehead": (62.0, 9.0), "brow_height": (17.0, 3.5), "nose_length": (50.0, 5.0),
    "philtrum": (15.0, 3.0), "lip_upper": (7.5, 2.0), "lip_lower": (10.0, 2.5),
    "nose_protrusion": (21.0, 4.5), "nose_width": (35.0, 4.0), "eye_shift": (0.0, 0.03),
    "eye_scale": (1.0, 0.1), "eye_open": (10.0, 2.0), "mouth_scale": (1.0, 0.12),
    "lip_protrusion": (4.5, 1.5), "cheek_fullness": (7.0, 4.0), "muzzle": (11.0, 3.0),
    "chin_protrusion": (6.0, 3.0), "forehead_slope": (0.35, 0.15), "brow_ridge": (4.0, 2.0),
    "asymmetry": (0.0, 1.0), "jaw_pivot": (0.0, 9.0), "jaw_glide": (4.0, 4.0),
    "tissue": (1.0, 0.25),
}


def sample_identity(rng: np.random.Generator) -> IdentityParams:
    """Draw identity parameters. Face size drives several lengths, as on real faces."""
    z = {k: rng.uniform(-1.0, 1.0) for k in PARAM_RANGES}
    size = z["face_width"]
    for k in ("eye_height", "chin_length", "nose_length", "forehead"):
        z[k] = float(np.clip(0.6 * z[k] + 0.4 * size, -1, 1))
    # thick soft tissue shows as full cheeks and a full muzzle
    z["tissue"] = float(np.clip(0.4 * z["tissue"] + 0.4 * z["cheek_fullness"] + 0.2 * z["muzzle"], -1, 1))
    vals = {k: m + r * z[k] for k, (m, r) in PARAM_RANGES.items()}
    return IdentityParams(**vals)


@dataclass(frozen=True)
class Anchors:
    """Feature points of a neutral face in mm (x right on the image, y up, z towards the viewer)."""

    eye_r: np.ndarray
    eye_l: np.ndarray
    brow_r: np.ndarray
    brow_l: np.ndarray
    nose_tip: np.ndarray
    nose_base: np.ndarray
    mouth: np.ndarray
    corner_r: np.ndarray
    corner_l: np.ndarray
    chin: np.ndarray
    cheek_r: np.ndarray
    cheek_l: np.ndarray
    jaw_pivot: np.ndarray      # temporomandibular joint (rotation centre of the jaw)
    skull_centre: np.ndarray   # rotation centre of the scalp/forehead
    mouth_width: float


class Pchip:
    """Monotone piecewise-cubic Hermite interpolation (Fritsch-Carlson, as scipy's PCHIP)."""

    def __init__(self, xk, yk) -> None:
        self.x = np.asarray(xk, dtype=np.float64)
        self.y = np.asarray(yk, dtype=np.float64)
        h = np.diff(self.x)
        delta = np.diff(self.y) / h
        d = np.zeros_like(self.y)
        w1, w2 = 2 * h[1:] + h[:-1], h[1:] + 2 * h[:-1]
        same = delta[:-1] * delta[1:] > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            inner = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
        d[1:-1] = np.where(same, inner, 0.0)
        d[0] = self._edge(h[0], h[1], delta[0], delta[1])
        d[-1] = self._edge(h[-1], h[-2], delta[-1], delta[-2])
        self.h, self.d = h, d

    @staticmethod
    def _edge(h0: float, h1: float, m0: float, m1: float) -> float:
        d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        if np.sign(d) != np.sign(m0):
            return 0.0
        if np.sign(m0) != np.sign(m1) and abs(d) > abs(3 * m0):
            return 3 * m0
        return float(d)

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        i = np.clip(np.searchsorted(self.x, x) - 1, 0, len(self.h) - 1)
        h = self.h[i]
        t = (x - self.x[i]) / h
        t2, t3 = t * t, t * t * t
        return ((2 * t3 - 3 * t2 + 1) * self.y[i] + (t3 - 2 * t2 + t) * h * self.d[i]
                + (-2 * t3 + 3 * t2) * self.y[i + 1] + (t3 - t2) * h * self.d[i + 1])


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _gauss(dx: np.ndarray, dy: np.ndarray, sx: float, sy: float) -> np.ndarray:
    return np.exp(-(dx / sx) ** 2 - (dy / sy) ** 2)


def below_weight(tpl: Template, slit_id: int, v_row: float, u_centre: float, u_half: float,
                 sigma0: float = 0.012, grow: float = 0.35, ramp: float = 0.5) -> np.ndarray:
    """1 below a slit, 0 above it, continuous around the slit's corners (per vertex).

    The two copies of a slit vertex get opposite sides; near the corners both tend to 1/2 so
    that an opening narrows smoothly into the corner. ``u_centre`` is the slit's centre column
    (the absolute value of ``u`` is compared when it is 0, for the mouth; otherwise each eye is
    treated with its own sign).
    """
    u, v = tpl.u, tpl.v
    if u_centre == 0.0:
        e = np.abs(u) - u_half
    else:
        e = np.abs(np.abs(u) - u_centre) - u_half
    sig = sigma0 + grow * np.maximum(e, 0.0)
    w = 0.5 - 0.5 * np.tanh((v - v_row) / sig)
    on = tpl.slit == slit_id
    corner = _smooth(-e[on] / (ramp * u_half))
    w[on] = 0.5 - 0.5 * tpl.side[on] * corner
    return w


class Face:
    """One identity's neutral face on a template plus the fields its expressions use."""

    def __init__(self, tpl: Template, params: IdentityParams, rng: np.random.Generator) -> None:
        self.tpl = tpl
        self.params = p = params
        u, v = tpl.u, tpl.v
        half_w = p.face_width / 2.0

        # ---- vertical profile: canonical v -> y (mm), monotone through the feature rows
        y_m = 0.0
        y_e = y_m + p.eye_height
        y_nb = y_m + p.lip_upper + p.philtrum
        knots_v = [-1.0, tp.V_MOUTH - tp.V_LIP_LOW, tp.V_MOUTH, tp.V_MOUTH + tp.V_LIP_UP,
                   tp.V_NOSE_BASE, tp.V_EYE, tp.V_BROW, 1.0]
        knots_y = [y_m - p.chin_length, y_m - p.lip_lower, y_m, y_m + p.lip_upper, y_nb, y_e,
                   y_e + p.brow_height, y_e + p.brow_height + p.forehead]
        if not np.all(np.diff(knots_y) > 0):
            raise ValueError(f"identity parameters give a non-monotone face profile: {knots_y}")
        y_of = Pchip(knots_v, knots_y)
        # small tilt of the eye/mouth lines from the face's asymmetry
        y = y_of(v) + 0.9 * p.asymmetry * u * np.exp(-((v - 0.0) / 0.6) ** 2)
        # rounded hairline corners
        y -= 14.0 * u ** 2 * _smooth((v - 0.55) / 0.45)

        # ---- horizontal: canonical warps (eye spacing/size, mouth width, nose width), then wrap
        au = np.abs(u)
        ec, hw = tpl.eye_centre, tpl.eye_half_width
        eye_zone = np.exp(-((au - ec) / 0.2) ** 2 - ((v - tp.V_EYE) / 0.2) ** 2)
        mouth_zone = np.exp(-((v - tp.V_MOUTH) / 0.22) ** 2) * (1 - _smooth((au - 0.3) / 0.3))
        nose_zone = np.exp(-((v - tp.V_NOSE_BASE) / 0.14) ** 2) * (1 - _smooth((au - 0.12) / 0.2))
        uw = (u + np.sign(u) * p.eye_shift * eye_zone
              + (p.eye_scale - 1.0) * (u - np.sign(u) * ec) * eye_zone
              + (p.mouth_scale - 1.0) * u * mouth_zone
              + 0.01 * (p.nose_width - 35.0) * u * nose_zone)
        phi = uw * PHI_MAX
        rx_of = Pchip([-1.0, -0.82, -0.5, -0.15, 0.1, 0.5, 1.0],
                                  np.array([0.5 * p.chin_width, 1.3 * p.chin_width, p.jaw_width, 0.96,
                                            1.0, 0.95, 0.8]) * half_w)
        rx = rx_of(v)
        rz = p.depth * rx
        x = rx * np.sin(phi)
        z = rz * (np.cos(phi) - 1.0)
        # forehead sloping back, chin underside curling back
        z -= p.forehead_slope * 70.0 * np.maximum(v - tp.V_BROW, 0.0) ** 2
        under = np.maximum(-0.8 - v, 0.0) / 0.2
        z -= 22.0 * under ** 2
        y += 6.0 * under ** 2

        # ---- eye opening: lids part along the eye slits
        lid = np.sqrt(np.clip(1.0 - ((au - ec) / hw) ** 2, 0.0, 1.0))
        lid *= 1.0 + 0.18 * np.clip((ec - au) / hw, -1, 1)  # upper lid peaks medially
        dv_e = v - tp.V_EYE
        up_side = (dv_e > 1e-9) | ((np.abs(dv_e) <= 1e-9) & (tpl.side >= 0))
        decay = np.exp(-np.abs(dv_e) / 0.07)
        on_eye = (tpl.slit == tp.EYE_R) | (tpl.slit == tp.EYE_L)
        in_cols = (np.abs(au - ec) < hw) & (np.abs(dv_e) < 0.3)
        open_up, open_low = 0.62 * p.eye_open, 0.38 * p.eye_open
        eye_dy = np.where(up_side, open_up, -open_low) * lid * decay * in_cols
        eye_dy[on_eye & (tpl.side == 0)] = 0.0
        y += eye_dy
        # lips: closed, with a hairline gap between the two copies of the mouth slit
        on_mouth = tpl.slit == tp.MOUTH
        gap = 0.6 * np.sqrt(np.clip(1.0 - (u / tp.U_MOUTH) ** 2, 0.0, 1.0))
        y[on_mouth] += tpl.side[on_mouth] * gap[on_mouth]

        self.canonical_xy = np.stack([x, y], 1)

        # ---- anchors (mm) in the frontal plane, read from the mapped canonical points
        def at(uc: float, vc: float) -> np.ndarray:
            k = int(np.argmin((u - uc) ** 2 + (v - vc) ** 2 + 10.0 * (tpl.side < 0)))
            return np.array([x[k], y[k], 0.0])

        eye_r, eye_l = at(-ec, tp.V_EYE), at(ec, tp.V_EYE)
        corner_r, corner_l = at(-tp.U_MOUTH, tp.V_MOUTH), at(tp.U_MOUTH, tp.V_MOUTH)
        mouth_w = float(corner_l[0] - corner_r[0])
        nb = np.array([0.0, y_nb, 0.0])

        # ---- features: depth relief added in mm space
        def g(c: np.ndarray, sx: float, sy: float) -> np.ndarray:
            return _gauss(x - c[0], y - c[1], sx, sy)

        relief = np.zeros_like(x)
        # nose: dorsum from the nasion to the tip, rounded tip, alae, short columella
        y_nasion = y_e + 3.0
        y_tip = float(y_of(tp.V_NOSE_TIP))
        t_dorsum = np.clip((y_nasion - y) / (y_nasion - y_tip), 0.0, 1.0)
        h = 5.0 + (p.nose_protrusion - 5.0) * t_dorsum ** 1.15
        below_tip = np.clip((y_tip - y) / (y_tip - y_nb + 1e-6), 0.0, None)
        h = np.where(y < y_tip, p.nose_protrusion * np.exp(-1.6 * below_tip ** 2) - 2.0 * below_tip, h)
        h = np.where(y > y_nasion, 5.0 * np.exp(-((y - y_nasion) / 12.0) ** 2), h)
        h = np.where(y < y_nb, h * np.exp(-((y_nb - y) / 3.0) ** 2), h)
        width = 5.5 + 4.5 * t_dorsum + 2.0 * (y < y_tip)
        relief += np.maximum(h, 0.0) * np.exp(-(x / width) ** 2)
        for s in (-1.0, 1.0):
            relief += 7.5 * g(np.array([s * (p.nose_width / 2 - 5.0), y_nb + 4.5]), 5.5, 5.0)
        # eyes: sockets, eyeballs, brow ridge, glabella
        for e in (eye_r, eye_l):
            relief += -10.0 * g(e, 17.0, 11.0) + 5.5 * g(e, 11.0, 7.0)
        brow_r, brow_l = at(-ec, tp.V_BROW), at(ec, tp.V_BROW)
        for b in (brow_r, brow_l):
            relief += p.brow_ridge * g(b + np.array([0.0, -2.0, 0.0]), 20.0, 7.0)
        relief += 2.5 * g(np.array([0.0, y_e + p.brow_height * 0.6]), 9.0, 9.0)
        # cheeks, muzzle, lips, sulcus, chin
        cheek_r, cheek_l = at(-0.5, 0.02), at(0.5, 0.02)
        for ch in (cheek_r, cheek_l):
            relief += p.cheek_fullness * g(ch, 19.0, 17.0)
        relief += p.muzzle * g(np.array([0.0, y_m + 4.0]), 0.75 * mouth_w, 30.0)
        lip_x = np.exp(-(x / (0.5 * mouth_w)) ** 4)
        relief += p.lip_protrusion * lip_x * np.exp(-((y - (y_m + 0.45 * p.lip_upper)) / (0.65 * p.lip_upper)) ** 2)
        relief += 1.15 * p.lip_protrusion * lip_x * np.exp(-((y - (y_m - 0.45 * p.lip_lower)) / (0.6 * p.lip_lower)) ** 2)
        relief -= 1.5 * lip_x * np.exp(-((y - y_m) / 1.5) ** 2)  # the lips' meeting line
        relief -= 2.5 * g(np.array([0.0, y_m - p.lip_lower - 5.0]), 18.0, 4.5)
        chin = np.array([0.0, y_m - p.chin_length + 13.0, 0.0])
        relief += p.chin_protrusion * g(chin, 16.0, 11.0)

        # ---- smooth random shape variation (low-order Legendre basis on the canonical domain)
        pu = np.polynomial.legendre.legvander(u, 3)
        pv = np.polynomial.legendre.legvander(v, 3)
        basis = (pu[:, :, None] * pv[:, None, :]).reshape(len(u), -1)[:, 1:]  # drop the constant
        order = np.add.outer(np.arange(4), np.arange(4)).ravel()[1:]
        amp = 1.6 / (1.0 + order)
        coef = rng.normal(size=(basis.shape[1], 3)) * amp[:, None]
        lowfreq = basis @ coef

        neutral = np.stack([x, y, z + relief], 1) + lowfreq

        # ---- fine surface detail along the normal (landmarks cannot see it)
        normals = vertex_normals(neutral, tpl.faces)
        xm, ym = neutral[:, 0], neutral[:, 1]
        self.detail = self._detail_fields(rng, xm, ym, p, y_e, y_m, y_nb, eye_r, eye_l, corner_r,
                                          corner_l, mouth_w)
        #: the identity's fine relief height along the normal (mm): what expressions deepen
        self.skin = sum(a * f for a, f in self.detail.values())
        neutral = neutral + normals * self.skin[:, None]

        self.neutral = neutral
        self.normals = vertex_normals(neutral, tpl.faces)
        z_of = lambda pnt: float(neutral[int(np.argmin(((neutral[:, :2] - pnt[:2]) ** 2).sum(1))), 2])  # noqa: E731

        def lift(pnt: np.ndarray) -> np.ndarray:
            return np.array([pnt[0], pnt[1], z_of(pnt)])

        pivot = np.array([0.0, float(y_of(0.08)) + p.jaw_pivot, -0.92 * p.depth * half_w])
        skull = np.array([0.0, y_e - 15.0, -1.05 * p.depth * half_w])
        self.anchors = Anchors(
            lift(eye_r), lift(eye_l), lift(brow_r), lift(brow_l),
            lift(np.array([0.0, y_tip, 0.0])), lift(nb), lift(np.array([0.0, y_m, 0.0])),
            lift(corner_r), lift(corner_l), lift(chin), lift(cheek_r), lift(cheek_l), pivot, skull,
            mouth_w)

    # ------------------------------------------------------------------ detail
    @staticmethod
    def _detail_fields(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, p: IdentityParams,
                       y_e: float, y_m: float, y_nb: float, eye_r: np.ndarray, eye_l: np.ndarray,
                       corner_r: np.ndarray, corner_l: np.ndarray,
                       mouth_w: float) -> dict[str, tuple[float, np.ndarray]]:
        """Named fine-scale fields ``(neutral amplitude mm, unit field [V])``.

        Expressions deepen some of them (forehead lines when the brows rise, nasolabial folds in
        a smile, ...), so a decoder that sees the neutral mesh can predict how they deepen.
        """
        out: dict[str, tuple[float, np.ndarray]] = {}
        # soft-tissue relief: a random sum of plane waves, 12-28 mm wavelengths
        n = 24
        k = rng.uniform(2 * np.pi / 28.0, 2 * np.pi / 12.0, n)
        ang = rng.uniform(0, np.pi, n)
        ph = rng.uniform(0, 2 * np.pi, n)
        tex = np.cos(np.outer(x, k * np.cos(ang)) + np.outer(y, k * np.sin(ang)) + ph).sum(1) / np.sqrt(n)
        out["texture"] = (float(rng.uniform(0.25, 0.5)), tex)
        # forehead lines: horizontal waves above the brows
        top = y_e + p.brow_height
        lam, phase = rng.uniform(9.0, 14.0), rng.uniform(0, 2 * np.pi)
        curve = 0.004 * x ** 2 * rng.uniform(-1, 1)
        win = (_smooth((y - top - 4.0) / 8.0) * (1 - _smooth((y - top - p.forehead + 14.0) / 10.0))
               * (1 - _smooth((np.abs(x) - 38.0) / 14.0)))
        out["forehead_lines"] = (float(rng.uniform(0.15, 0.6)),
                                 -np.abs(np.sin(np.pi * (y - top + curve) / lam + phase)) ** 3 * win * 2.0)
        # glabella lines: vertical furrows between the brows
        lam_g = rng.uniform(7.0, 11.0)
        win_g = _gauss(x, y - (y_e + 0.5 * p.brow_height), 11.0, 9.0)
        out["glabella"] = (float(rng.uniform(0.1, 0.5)), -np.cos(np.pi * x / lam_g) ** 4 * win_g * 1.5)
        # crow's feet: radial lines at the outer eye corners
        feet = np.zeros_like(x)
        n_rays = rng.uniform(5.0, 8.0)
        for s, e in ((-1.0, eye_r), (1.0, eye_l)):
            cx = e[0] + s * 0.5 * p.face_width * 0.2
            rr = np.hypot(x - cx, y - e[1])
            th = np.arctan2(y - e[1], s * (x - cx))
            ring = _smooth((rr - 3.0) / 6.0) * (1 - _smooth((rr - 18.0) / 8.0)) * (s * (x - cx) > -4.0)
            feet += -np.abs(np.sin(n_rays * th)) ** 3 * ring
        out["crows_feet"] = (float(rng.uniform(0.05, 0.35)), feet)
        # nasolabial folds: a groove from each nose wing to beyond the mouth corner
        fold = np.zeros_like(x)
        for s, cnr in ((-1.0, corner_r), (1.0, corner_l)):
            a = np.array([s * (p.nose_width / 2 + 1.0), y_nb + 5.0])
            b = np.array([cnr[0] + s * 7.0, cnr[1] - 9.0])
            d = _segment_distance(x, y, a, b)
            fold += -np.exp(-(d / 2.8) ** 2) + 0.45 * np.exp(-((d - 4.0) / 3.0) ** 2) * (s * (x - _line_x(y, a, b)) < 0)
        out["nasolabial"] = (float(rng.uniform(0.4, 1.6)), fold)
        # chin: dimpled "orange peel" skin that shows when the chin rises
        kc = rng.uniform(2 * np.pi / 9.0, 2 * np.pi / 6.0, 6)
        ac = rng.uniform(0, np.pi, 6)
        pc = rng.uniform(0, 2 * np.pi, 6)
        bumps = np.cos(np.outer(x, kc * np.cos(ac)) + np.outer(y, kc * np.sin(ac)) + pc).sum(1) / np.sqrt(6)
        out["chin_dimples"] = (float(rng.uniform(0.05, 0.25)),
                               bumps * _gauss(x, y - (y_m - p.lip_lower - 16.0), 16.0, 11.0))
        return out

    # ------------------------------------------------------------------ helpers
    @property
    def x(self) -> np.ndarray:
        return self.neutral[:, 0]

    @property
    def y(self) -> np.ndarray:
        return self.neutral[:, 1]

    def gauss(self, centre: np.ndarray, sx: float, sy: float) -> np.ndarray:
        """Gaussian mask on the neutral face's frontal plane around ``centre`` (mm)."""
        return _gauss(self.x - centre[0], self.y - centre[1], sx, sy)

    def side_gain(self, asym: float) -> np.ndarray:
        """Per-vertex gain ``1 + asym`` on the subject's left, ``1 - asym`` on the right."""
        return 1.0 + asym * np.tanh(self.x / 12.0)


def _segment_distance(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((x - a[0]) * ab[0] + (y - a[1]) * ab[1]) / (ab @ ab), 0.0, 1.0)
    return np.hypot(x - a[0] - t * ab[0], y - a[1] - t * ab[1])


def _line_x(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    t = (y - a[1]) / (b[1] - a[1])
    return a[0] + t * (b[0] - a[0])


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals ``[V, 3]``."""
    tri = verts[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vn = np.zeros_like(verts)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    norm = np.linalg.norm(vn, axis=1, keepdims=True)
    return vn / np.maximum(norm, 1e-12)
