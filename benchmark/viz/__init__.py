"""Headless rendering: mesh strips, error heatmaps, GIF/MP4 animations, run example pictures.

Everything draws on the CPU with matplotlib's Agg backend (no display, no GPU)::

    from fc4dfs.benchmark.viz import Track, render_strip, render_heatmaps, render_animation
    render_strip([Track("ground truth", frames, landmarks)], topology.faces, "strip.png", fps=30)
"""
from fc4dfs.benchmark.viz.animate import ffmpeg_executable, save_gif, save_mp4, save_png
from fc4dfs.benchmark.viz.camera import Camera
from fc4dfs.benchmark.viz.examples import compare_runs, load_examples, render_examples
from fc4dfs.benchmark.viz.figures import (Track, animation_frames, frame_indices, render_animation,
                                          render_heatmaps, render_strip, vertex_errors)
from fc4dfs.benchmark.viz.layout import ColorScale, PanelGrid
from fc4dfs.benchmark.viz.raster import MeshRenderer

__all__ = [
    "Camera", "ColorScale", "MeshRenderer", "PanelGrid", "Track", "animation_frames", "compare_runs",
    "ffmpeg_executable", "frame_indices", "load_examples", "render_animation", "render_examples",
    "render_heatmaps", "render_strip", "save_gif", "save_mp4", "save_png", "vertex_errors",
]
