"""A fixed orthographic camera: one framing for every frame of every sequence drawn together."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np


def view_rotation(azimuth_deg: float = 0.0, elevation_deg: float = 0.0) -> np.ndarray:
    """Rotation [3, 3] from model to view space; the camera looks along -z with y up.

    ``azimuth`` turns the model about its vertical (y) axis, ``elevation`` tilts it about x, so
    (0, 0) is the frontal view of a face whose nose points to +z (FLAME's convention).
    """
    a, e = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    ry = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(e), -np.sin(e)], [0.0, np.sin(e), np.cos(e)]])
    return (rx @ ry).astype(np.float64)


@dataclass(frozen=True)
class Camera:
    """Orthographic view: rotation, the window it shows (view-space x/y limits) and the image size.

    Build it with :meth:`framing` from all the points that will be drawn, so motion across frames
    shows as motion in the picture instead of being re-centred away.
    """

    rotation: np.ndarray  # [3, 3]
    center: np.ndarray  # [3] model-space point at the image centre
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    @classmethod
    def framing(cls, points: Iterable[np.ndarray], azimuth: float = 0.0, elevation: float = 0.0,
                margin: float = 0.06) -> "Camera":
        """The camera that frames every point of every array in ``points`` (each ``[..., 3]``)."""
        rot = view_rotation(azimuth, elevation)
        lo = np.full(3, np.inf)
        hi = np.full(3, -np.inf)
        pts_seen = False
        for arr in points:
            if arr is None:
                continue
            a = np.asarray(arr, dtype=np.float64).reshape(-1, 3)
            if not len(a):
                continue
            # bounds of the rotated points: rotate a subsample for speed, then pad a little
            step = max(1, len(a) // 200_000)
            v = a[::step] @ rot.T
            lo = np.minimum(lo, v.min(0))
            hi = np.maximum(hi, v.max(0))
            pts_seen = True
        if not pts_seen:
            raise ValueError("cannot frame a camera on no points")
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise ValueError("cannot frame a camera on NaN or infinite points")
        mid = (lo + hi) / 2.0
        half = np.maximum((hi - lo) / 2.0, 1e-6)
        half_xy = half[:2] * (1.0 + margin) + margin * half[:2].max() * 0.25
        center = mid @ rot  # back to model space
        return cls(rot, center, (-half_xy[0], half_xy[0]), (-half_xy[1], half_xy[1]))

    @property
    def aspect(self) -> float:
        """Width over height of the visible window."""
        return (self.xlim[1] - self.xlim[0]) / (self.ylim[1] - self.ylim[0])

    def image_size(self, height: int) -> tuple[int, int]:
        """(width, height) in pixels for a panel ``height`` pixels tall (width kept even)."""
        width = int(round(height * self.aspect / 2.0)) * 2
        return max(width, 2), int(height)

    def to_view(self, points: np.ndarray) -> np.ndarray:
        """View-space coordinates ``[..., 3]``: x right, y up, z towards the viewer."""
        return (np.asarray(points, dtype=np.float64) - self.center) @ self.rotation.T
