"""Animated GIF (Pillow) and MP4 (ffmpeg, when an encoder is available) from RGB frames."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Sequence as Seq

import numpy as np
from PIL import Image


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write one RGB array as PNG (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(image[..., :3], dtype=np.uint8)).save(path)
    return path


def save_gif(images: Seq[np.ndarray], path: str | Path, fps: float, loop: int = 0) -> Path:
    """Write RGB frames as a looping animated GIF at ``fps`` (GIF stores delays in 10 ms steps)."""
    if not len(images):
        raise ValueError("no frames to write")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    duration_ms = max(20, int(round(100.0 / fps)) * 10)  # most viewers clamp delays below 20 ms
    palette = _shared_palette(images)
    frames = [_quantize(im, palette) for im in images]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration_ms, loop=loop,
                   optimize=False, disposal=1)
    return path


def _shared_palette(images: Seq[np.ndarray]) -> Image.Image:
    """One 256-colour palette fitted to a few frames, so colours do not flicker between frames."""
    pick = sorted({0, len(images) // 3, (2 * len(images)) // 3, len(images) - 1})
    mosaic = np.concatenate([np.asarray(images[i][..., :3], dtype=np.uint8) for i in pick], axis=0)
    return Image.fromarray(mosaic).quantize(colors=256, method=Image.Quantize.MEDIANCUT)


def _quantize(image: np.ndarray, palette: Image.Image) -> Image.Image:
    rgb = Image.fromarray(np.ascontiguousarray(image[..., :3], dtype=np.uint8))
    return rgb.quantize(palette=palette, dither=Image.Dither.NONE)


def ffmpeg_executable() -> str | None:
    """Path of an ffmpeg binary: imageio-ffmpeg's bundled one, else one on PATH, else None."""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        if exe and Path(exe).exists():
            return str(exe)
    except Exception:  # noqa: BLE001 - imageio-ffmpeg missing or without a binary
        pass
    return shutil.which("ffmpeg")


def save_mp4(images: Seq[np.ndarray], path: str | Path, fps: float, crf: int = 20) -> Path | None:
    """Write RGB frames as H.264 MP4 (yuv420p, plays everywhere); None when no ffmpeg exists."""
    exe = ffmpeg_executable()
    if exe is None:
        return None
    if not len(images):
        raise ValueError("no frames to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = images[0].shape[:2]
    h2, w2 = h + h % 2, w + w % 2  # yuv420p needs even sides
    raw = bytearray()
    for im in images:
        if im.shape[:2] != (h, w):
            raise ValueError("all frames of a video must have the same size")
        frame = np.full((h2, w2, 3), 255, dtype=np.uint8)
        frame[:h, :w] = im[..., :3]
        raw += frame.tobytes()
    tmp = path.with_name(f".{path.stem}.tmp.mp4")
    for codec in (["-c:v", "libx264", "-crf", str(crf), "-preset", "medium"], ["-c:v", "mpeg4", "-q:v", "3"]):
        cmd = [exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w2}x{h2}",
               "-r", f"{fps:.6g}", "-i", "-", *codec, "-pix_fmt", "yuv420p", "-movflags", "+faststart",
               str(tmp)]
        proc = subprocess.run(cmd, input=bytes(raw), capture_output=True)
        if proc.returncode == 0:
            tmp.replace(path)
            return path
    tmp.unlink(missing_ok=True)
    raise RuntimeError(f"ffmpeg ({exe}) could not encode {path}: {proc.stderr.decode(errors='replace')[-300:]}")
