"""Text control (Zou et al. §3.2, Eq. 10, Alg. 2): the offline encoder, the dataset's descriptions and
the text-guided ``ddpm``."""
from __future__ import annotations

import socket
from functools import lru_cache

import numpy as np
import pytest

from fc4dfs.datasets.base import enriched_text, resample_frames
from fc4dfs.datasets.fixtures import tiny_dataset
from fc4dfs.datasets.synthetic import load_synthetic
from fc4dfs.plugins.contracts import Budget
from fc4dfs.plugins.errors import ComponentError
from fc4dfs.zoo import text as text_module
from fc4dfs.zoo.generators.ddpm import DDPMGenerator
from limits import assert_above

COMPOSED = "big smile with eyebrows up"


def test_encoder_loads_from_the_package_without_network(monkeypatch, tmp_path):
    """No socket may be opened (a download attempt would fail the test); the tokenizer is copied
    into the suite's cache and synonyms land closer than unrelated phrases."""

    def no_network(*args, **kwargs):
        raise AssertionError("the text encoder attempted a network connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("FC4DFS_CACHE", str(tmp_path))
    text_module.load_text_encoder.cache_clear()
    try:
        enc = text_module.load_text_encoder()
        feats = enc.encode(["big smile", "broad big smile", "raised eyebrows"])
    finally:
        text_module.load_text_encoder.cache_clear()
    assert (tmp_path / "wordllama" / "tokenizers").is_dir() and any((tmp_path / "wordllama" / "tokenizers").iterdir())
    assert feats.shape == (3, enc.dim) == (3, 256) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
    sim = feats @ feats.T
    assert sim[0, 1] > sim[0, 2] + 0.1, sim
    with pytest.raises(ComponentError, match="empty"):
        enc.encode([" "])


def test_dataset_descriptions_are_not_label_names_and_survive_subsets():
    ds = load_synthetic(identities=4, resolution="small", labels=("high_smile", "eyebrow"), repetitions=1,
                        progress=False)
    for lab in ds.labels:
        texts = ds.label_texts(lab)
        assert texts[0] == lab.replace("_", " ") and len(texts) >= 3
        assert all(t.strip() and t not in (lab, texts[0]) for t in texts[1:])  # synonyms, not the name
    sub = ds.subset(ds.identities[:2])
    assert sub.label_texts("eyebrow") == ds.label_texts("eyebrow")
    seq = sub.sequences[0]
    every = sub.sequence_texts(seq.label, seq.kind)
    assert enriched_text(sub.label_texts(seq.label)[1], seq.kind) in every
    assert all(COMPOSED not in ds.sequence_texts(s.label, s.kind) for s in ds.sequences)
    # a dataset without a vocabulary describes a label by its words
    assert tiny_dataset().label_texts("expr1") == ("expr1",)


FAST = dict(DDPMGenerator.conformance_options)


@lru_cache(maxsize=1)
def _tiny_trained() -> DDPMGenerator:
    ds = tiny_dataset()
    g = DDPMGenerator(diffusion_steps=200, **FAST)
    g.fit(ds.subset(ds.generator_split()[0]), Budget("smoke"), progress=False)
    return g


def test_text_api_shapes_seeds_and_errors(tmp_path):
    g = _tiny_trained()
    assert g.train_report["text"]["conditioning"] == "cfg"  # the default: texts condition the network
    a = g.sample(None, 9, seed=0, texts=["expr0", "from the neutral face to expr1"])
    assert a.shape == (2, 9, 68, 3) and np.isfinite(a).all()
    assert np.array_equal(a, g.sample(None, 9, seed=0, texts=["expr0", "from the neutral face to expr1"]))
    unguided = g._run(9, 2, 0, None, None, None, 1).reshape(a.shape)
    assert not np.allclose(a, unguided)
    nlm = tiny_dataset().sequences[0].landmarks[:1]
    out = g.generate_text(nlm, ["expr2"], 9, seed=1)
    assert out.shape == (1, 9, 68, 3) and np.array_equal(out[:, 0], nlm)
    loaded = DDPMGenerator.load(g.save(tmp_path / "g.safetensors"), tiny_dataset().topology)
    assert np.array_equal(loaded.generate_text(nlm, ["expr2"], 9, seed=1), out)
    with pytest.raises(ComponentError, match="not both"):
        g.sample(["expr0"], 9, texts=["expr0"])
    with pytest.raises(ComponentError, match="entries"):
        g.fill(np.repeat(nlm[:, None], 9, 1), np.eye(1, 9, dtype=bool), texts=["a", "b"])
    plain = DDPMGenerator(diffusion_steps=200, text_guidance=False, **FAST)
    ds = tiny_dataset()
    plain.fit(ds.subset(ds.generator_split()[0]), Budget("smoke", {"iterations": 20, "cls_iterations": 20}),
              progress=False)
    with pytest.raises(ComponentError, match="text_guidance"):
        plain.generate_text(nlm, ["expr2"], 9)


#: the two terms and the facial regions (iBUG 68 indices) whose motion each one names
TERMS = {"high_smile": ("big smile", np.arange(48, 68)), "eyebrow": ("eyebrows up", np.arange(17, 27))}


@pytest.mark.slow
@pytest.mark.parametrize("guidance", ["cfg", "classifier"])
def test_composing_two_unseen_terms_moves_the_sample_toward_both(guidance):
    """Guided by "big smile with eyebrows up" — a text never seen in training, which only paired each
    sequence with descriptions of its one label — samples carry both terms: adding "eyebrows up" to
    "big smile" raises the eyebrow motion, and adding "big smile" to "eyebrows up" raises the smile.

    A sample's motion toward a term is the projection of its displacement from frame 0 in that term's
    region onto the mean training displacement of the term's label there (1 = a typical real sequence
    of that label). The same seeds are used for every text, so differences are paired; each must exceed
    3 standard errors of the paired differences (the measurement's own noise).
    """
    labels = ("high_smile", "eyebrow", "mouth_open", "cheeks_in")
    ds = load_synthetic(identities=6, resolution="small", labels=labels, repetitions=2, progress=False)
    train = ds.subset(ds.generator_split()[0])
    # "classifier": Eq. 10 guidance as the paper has it, on absolute frames; "cfg": the default, the text
    # feature conditions the network
    paper = dict(representation="absolute", parameterization="eps", schedule="linear") if guidance == "classifier" else {}
    g = DDPMGenerator(diffusion_steps=200, sampling_steps=20, eta=0.0, guidance=guidance, **paper)
    g.fit(train, Budget("smoke", {"iterations": 1200, "cls_iterations": 60, "text_iterations": 300}),
          progress=False)
    length, n = 24, 32

    def motion(x: np.ndarray, label: str) -> np.ndarray:
        region = TERMS[label][1]
        ref = np.stack([resample_frames(s.landmarks, length) for s in train.sequences if s.label == label])
        d = (ref - ref[:, :1]).mean(0)[:, region]
        disp = (x - x[:, :1])[:, :, region]
        return (disp * d).sum((1, 2, 3)) / (d * d).sum()

    samples = {t: g.sample(None, length, seed=0, texts=[t] * n)
               for t in (TERMS["high_smile"][0], TERMS["eyebrow"][0], COMPOSED)}
    for added, other in (("eyebrow", "high_smile"), ("high_smile", "eyebrow")):
        diff = motion(samples[COMPOSED], added) - motion(samples[TERMS[other][0]], added)
        limit = 3.0 * diff.std(ddof=1) / np.sqrt(n)
        assert_above(diff.mean(), limit, f"adding {TERMS[added][0]!r} to {TERMS[other][0]!r}: change of the motion "
                     f"toward {added} (limit 3 standard errors)")
