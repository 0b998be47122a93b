"""Sentence features for text control (Zou et al. §3.2, Eq. 10), from a packaged encoder, offline.

The paper extracts text features with CLIP, whose weights would have to be downloaded at run time.
We use WordLlama's ``l2_supercat`` model instead: 256-d token-embedding pooling whose weights
(16 MB) ship inside the ``wordllama`` wheel, so nothing is fetched. Its loader looks for the
tokenizer file under ``<package>/tokenizer/`` while the wheel ships it under ``tokenizers/``, and
would then fall back to a download; :func:`load_text_encoder` copies the packaged tokenizer into
the suite's cache (``$FC4DFS_CACHE/wordllama/tokenizers/``) once and loads with downloads disabled.

    enc = load_text_encoder()
    feats = enc.encode(["big smile", "raised eyebrows"])      # [2, 256] float32, unit norm
"""
from __future__ import annotations

import logging
import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Sequence as Seq

import numpy as np

from fc4dfs.datasets.storage import cache_dir
from fc4dfs.plugins.errors import ComponentError

ENCODER_CONFIG = "l2_supercat"
ENCODER_DIM = 256


class TextEncoder:
    """A frozen sentence encoder: ``encode(texts) -> [N, dim]`` float32 unit vectors."""

    def __init__(self, model: object, name: str, dim: int) -> None:
        self._model = model
        self.name = name
        self.dim = dim

    def encode(self, texts: Seq[str]) -> np.ndarray:
        """L2-normalised features ``[len(texts), dim]``; an empty or blank text is a ComponentError."""
        texts = [str(t) for t in texts]
        for t in texts:
            if not t.strip():
                raise ComponentError("text must not be empty")
        out = np.asarray(self._model.embed(texts, norm=True), dtype=np.float32)  # type: ignore[attr-defined]
        return out.reshape(len(texts), self.dim)


def _packaged_tokenizer(package_dir: Path) -> Path:
    path = package_dir / "tokenizers" / f"{ENCODER_CONFIG}_tokenizer_config.json"
    if not path.is_file():
        raise ComponentError(f"the installed wordllama has no packaged tokenizer at {path}")
    return path


@lru_cache(maxsize=1)
def load_text_encoder() -> TextEncoder:
    """WordLlama ``l2_supercat`` (256-d), loaded from the package and the suite's cache only.

    Raises ComponentError when ``wordllama`` is not installed or its packaged files are missing;
    never opens a network connection.
    """
    root = logging.getLogger()
    handlers = list(root.handlers)
    level = root.level
    try:
        import wordllama
        from wordllama import WordLlama
    except ImportError:
        raise ComponentError("text control needs the 'wordllama' package (pip install wordllama)") from None
    finally:  # wordllama calls logging.basicConfig(level=INFO) on import: undo it
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
    src = _packaged_tokenizer(Path(wordllama.__file__).parent)
    cache = cache_dir("wordllama")
    dst = cache / "tokenizers" / src.name
    if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    try:
        model = WordLlama.load(ENCODER_CONFIG, cache_dir=cache, dim=ENCODER_DIM, disable_download=True)
    except (FileNotFoundError, ValueError) as e:
        raise ComponentError(f"cannot load the packaged text encoder offline: {e}") from None
    return TextEncoder(model, f"wordllama-{ENCODER_CONFIG}", ENCODER_DIM)
