"""Headless rendering: shading, fixed framing, landmark overlay, heatmaps, layout, GIF/MP4."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fc4dfs.benchmark.viz import (Camera, ColorScale, MeshRenderer, PanelGrid, Track, ffmpeg_executable,
                                  frame_indices, render_animation, render_heatmaps, render_strip, vertex_errors)
from fc4dfs.benchmark.viz.layout import nice_ceil
from fc4dfs.datasets.fixtures import tiny_dataset


def quad(z_tilt: float = 0.0, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A 100 mm square facing +z (optionally tilted about y, shifted along x)."""
    v = np.array([[-50, -50, 0], [50, -50, 0], [50, 50, 0], [-50, 50, 0]], np.float32)
    v[:, 2] = v[:, 0] * z_tilt
    v[:, 0] += shift
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def foreground(img: np.ndarray) -> np.ndarray:
    return (img < 245).any(-1)


def test_camera_framing_is_fixed_so_motion_shows():
    v0, f = quad()
    v1, _ = quad(shift=60.0)
    cam = Camera.framing([v0, v1])
    r = MeshRenderer(f, cam, height=120)
    a, b = r.render(v0), r.render(v1)
    assert a.shape == b.shape == (120, cam.image_size(120)[0], 3)
    xa = np.nonzero(foreground(a))[1].mean()
    xb = np.nonzero(foreground(b))[1].mean()
    assert xb - xa > 0.25 * a.shape[1]  # the shifted square is drawn further right


def test_lambert_shading_darkens_faces_turned_from_the_light():
    v_front, f = quad()
    v_side, _ = quad(z_tilt=3.0)  # normal turned far to the side, away from the upper-left light
    cam = Camera.framing([v_front, v_side])
    r = MeshRenderer(f, cam, height=100, light=(0, 0, 1))
    front = r.render(v_front)[foreground(r.render(v_front))].mean()
    side = r.render(v_side)[foreground(r.render(v_side))].mean()
    assert front > side + 40


def test_painter_order_near_face_hides_far_face():
    near, f = quad()
    far = near.copy()
    far[:, 2] -= 30.0
    verts = np.concatenate([far, near])
    faces = np.concatenate([f, f + 4])
    cam = Camera.framing([verts])
    red = np.zeros(8)
    red[4:] = 1.0  # near square coloured high
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    img = MeshRenderer(faces, cam, height=80).render(verts, values=red, cmap=colormaps["coolwarm"],
                                                      norm=Normalize(0, 1), shade_floor=1.0)
    centre = img[40, img.shape[1] // 2].astype(int)
    assert centre[0] > centre[2] + 60  # red (near), not blue (far)


def test_landmark_overlay_marks_landmark_positions():
    v, f = quad()
    cam = Camera.framing([v])
    r = MeshRenderer(f, cam, height=160)
    lm = np.array([[0.0, 0.0, 1.0], [30.0, 30.0, 1.0]], np.float32)
    plain, marked = r.render(v), r.render(v, landmarks=lm, landmark_color="#0000ff")
    changed = (np.abs(plain.astype(int) - marked.astype(int)).sum(-1) > 60)
    ys, xs = np.nonzero(changed)
    assert len(xs) > 4
    centre_x, centre_y = r.width / 2, r.height / 2
    assert np.min(np.hypot(xs - centre_x, ys - centre_y)) < 4  # a dot at the first landmark
    cy, cx = int(centre_y), int(centre_x)
    patch = marked[cy - 1:cy + 2, cx - 1:cx + 2].reshape(-1, 3).astype(int)
    assert (patch[:, 2] > patch[:, 0] + 120).any()  # drawn in the requested blue


def test_heatmap_colours_follow_the_error():
    ds = tiny_dataset()
    gt = np.asarray(ds.sequences[0].frames[:2])
    pred = gt.copy()
    x = gt[0, :, 0]
    pred[:, x > 0, 2] += 4.0  # right half wrong by 4 mm
    err = vertex_errors(pred, gt)
    assert err.shape == gt.shape[:2] and err.max() == pytest.approx(4.0, abs=1e-5)
    img = render_heatmaps(gt[:1], {"m": pred[:1]}, ds.topology.faces, show_gt=False, height=120,
                          scale=ColorScale(vmax=4.0))
    grid_w = img.shape[1]
    mid_row = img[img.shape[0] // 2 + 10]
    left = mid_row[int(grid_w * 0.2)].astype(int)  # low error: blue
    right = mid_row[int(grid_w * 0.6)].astype(int)  # high error: red
    assert left[2] > left[0] and right[0] > right[2] + 80


def test_colour_scale_and_nice_ceil():
    assert nice_ceil(0.93) == 1.0 and nice_ceil(1.7) == 2.0 and nice_ceil(11) == 15.0 and nice_ceil(0) == 0.1
    s = ColorScale.for_values([np.linspace(0, 3.3, 1000)], percentile=100)
    assert s.vmax == 4.0 and s.label.endswith("(mm)")


def test_panel_grid_places_panels_and_checks_sizes():
    g = PanelGrid(2, 3, 40, 30, title="t", row_labels=["a", "b"], col_labels=list("xyz"), scale=ColorScale(2.0))
    panel = np.zeros((30, 40, 3), np.uint8)
    img = g.compose([[None, None, None], [None, panel, None]])
    assert img.shape == (g.height, g.width, 3)
    y, x = g.box(1, 1)
    assert (img[y:y + 30, x:x + 40] == 0).all()
    assert img[g.box(0, 0)[0] + 5, g.box(0, 0)[1] + 5].min() == 255
    with pytest.raises(ValueError, match="expects"):
        g.compose([[np.zeros((10, 10, 3), np.uint8)]])
    with pytest.raises(ValueError, match="row labels"):
        PanelGrid(2, 1, 10, 10, row_labels=["only one"])


def test_frame_indices_cover_first_and_last():
    assert frame_indices(30, 6) == [0, 6, 12, 17, 23, 29]
    assert frame_indices(3, 6) == [0, 1, 2]
    assert frame_indices(10, 1) == [0]


def test_strip_png_has_one_column_per_frame(tmp_path):
    s = tiny_dataset().sequences[1]
    faces = tiny_dataset().topology.faces
    gt = np.asarray(s.frames)
    pred = gt + 0.5
    tracks = [Track("gt", gt, s.landmarks), Track("pred", pred), Track("err", pred, errors=vertex_errors(pred, gt))]
    path = tmp_path / "strip.png"
    img = render_strip(tracks, faces, path, n_frames=4, fps=s.fps, title="strip")
    with Image.open(path) as im:
        assert im.size == (img.shape[1], img.shape[0]) and im.mode == "RGB"
    cam_w, cam_h = Camera.framing([gt, pred, s.landmarks]).image_size(180)
    assert img.shape[0] > 3 * cam_h and img.shape[1] > 4 * cam_w
    with pytest.raises(ValueError, match="outside"):
        render_strip(tracks, faces, frames=[0, 999])


def test_track_validation():
    with pytest.raises(ValueError, match="neither"):
        Track("x")
    with pytest.raises(ValueError, match="errors need meshes"):
        Track("x", landmarks=np.zeros((2, 3, 3)), errors=np.zeros((2, 5)))


def test_gif_has_every_frame_at_the_frame_rate(tmp_path):
    ds = tiny_dataset()
    s = ds.sequences[0]
    p = render_animation([Track("gt", s.frames, s.landmarks)], ds.topology.faces, tmp_path / "a.gif", fps=20.0,
                         height=80)
    with Image.open(p) as im:
        assert im.n_frames == s.length
        assert im.info["duration"] == 50
        im.seek(s.length - 1)
    p = render_animation([Track("gt", s.frames)], ds.topology.faces, tmp_path / "b.gif", fps=20.0, height=60,
                         stride=4)
    with Image.open(p) as im:
        assert im.n_frames == len(range(0, s.length, 4)) + (1 if (s.length - 1) % 4 else 0)
        assert im.info["duration"] == 200
    with pytest.raises(ValueError, match=".gif or .mp4"):
        render_animation([Track("gt", s.frames)], ds.topology.faces, tmp_path / "c.avi", fps=20.0)


@pytest.mark.skipif(ffmpeg_executable() is None, reason="no ffmpeg (pip install imageio-ffmpeg) - MP4 is optional")
def test_mp4_decodes_to_every_frame(tmp_path):
    import imageio_ffmpeg

    ds = tiny_dataset()
    s = ds.sequences[0]
    p = render_animation([Track("gt", s.frames)], ds.topology.faces, tmp_path / "a.mp4", fps=s.fps, height=81)
    reader = imageio_ffmpeg.read_frames(str(p))
    meta = next(reader)
    n = sum(1 for _ in reader)
    assert n == s.length and meta["fps"] == pytest.approx(s.fps, rel=0.01)
