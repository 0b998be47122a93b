"""``ddpm``: the 4D facial expression diffusion model of Zou et al. (2023), with a DDIM sampler.

The paper's model (``preset=paper``): an unconditional DDPM over whole absolute landmark sequences
``x_0 = {L_1..L_F}`` (linear beta 1e-4 -> 0.02, T = 2000, sigma_t^2 = beta_t, eps-prediction with
the simple loss, Eq. 6-8) whose noise approximator is a bidirectional transformer (step embedding +
frame positional encoding + feature embedding of ``x_t``; any length, trained on lengths drawn
uniformly from the data's range as in App. A). Labels steer the reverse process through a second
transformer with a classification token trained on noisy ``x_t`` (classifier guidance, Eq. 9,
3 Adagrad steps, lambda = 0.01). Texts steer it through a third one whose output is a
text-feature vector, trained to maximise its cosine similarity with the features of a description
of ``x_0`` (text control, Eq. 10, Alg. 2): each training sequence is paired with a text drawn
from its dataset's descriptions (the label's words and synonyms, and the enriched sentences,
:meth:`Dataset.sequence_texts`). The defaults depart from it where the quick budget showed
they must (listed below): the same transformer diffuses motion (displacements from frame 0),
predicts x_0 on a cosine schedule, and is conditioned on label and intensity with
classifier-free guidance.

Python API (besides the Generator contract)::

    g = DDPMGenerator(sampler="ddim", sampling_steps=50)
    g.fit(train_dataset, Budget("quick"), seed=0)
    seq = g.generate(neutral_lms, ["mouth_open"], length=40, seed=0)     # Alg. 4, frame 0 = neutral
    filled = g.fill(known, mask, labels=None, seed=0)                     # Alg. 3 expression filling
    free = g.sample(["mouth_open"], length=40, seed=0)                    # Alg. 1 label control
    said = g.sample(None, 40, texts=["big smile with eyebrows up"])     # Alg. 2 text control
    face = g.generate_text(neutral_lms, ["jaw dropped"], length=40)       # Alg. 4 guided by text

``fill(known [B, T, L, 3] mm, mask [B, T] bool, labels=None | list[str], seed, harmonize_iters=1)``
completes the frames where ``mask`` is False and returns ``[B, T, L, 3]`` with the known frames
copied exactly; with labels it is label-guided, and ``harmonize_iters`` (option) with one known
neutral frame is exactly what ``generate`` does (Alg. 4).

Where this departs from the paper. ``--gen-opt preset=paper`` restores all of the paper's sampling,
guidance and coordinates (:data:`PAPER_PRESET`), the ``paper`` budget its training; every option
below is reachable on its own. Figures: quick budget on ``synthetic`` (small), Alg. 4 from each
held-out test sequence's neutral at its own length (72 sequences, 12 labels), scored with the
suite's landmark classifier; real test sequences: 98.6 % accuracy; holding the neutral: E_lm
1.87 mm; jerk = mean frame-to-frame acceleration relative to the real sequence's (0.063 mm).
The screening table (all rows, one seed) is in ``benchmarks/test_bench_generators_gen.py``.

* ``representation=motion`` [absolute]: the model diffuses each frame's displacement from frame 0
  (PCA-whitened over the training displacements) instead of absolute landmarks, and ``generate``
  adds it to the given neutral. Absolute frames spend the model on anatomy, which Alg. 4 must then
  infer from one noisy known frame: with classifier-free guidance, x_0-prediction and cosine-1000,
  absolute frames score 12.5 % / FID 65 / E_lm 2.91 mm, motion 95.8 % / FID 0.9 / E_lm 1.26 mm.
  ``fill`` takes displacements from each sequence's first known frame (``anchor_known`` absorbs
  the constant this leaves when frame 0 is unknown); ``sample`` adds the mean training neutral.
* ``guidance=cfg`` [classifier]: classifier-free guidance (Ho & Salimans 2022): the label (and the
  intensity, see below) enter the noise approximator through an embedding added to the step
  embedding, dropped with ``cfg_dropout=0.1``; sampling uses ``eps_null + s (eps_cond - eps_null)``
  with ``cfg_scale`` s = 2 (motion model, eta 0: s = 1 83.3 % / FID 17.1, s = 2 95.8 % / 0.9,
  s = 3 97.2 % / 3.6 with E_lm 1.96 mm). ``guidance=classifier`` is the paper's Eq. 9 with Adagrad
  refinement; on the paper's backbone it scored 61 % (DDIM-50) and 21 % (DDPM-2000) (30 frames).
  ``cfg_every=2`` [1]: the unconditional half of the batch runs at every other step; the steps
  between add the previous one's guidance direction ``(s - 1)(x0_cond - x0_null)`` to their
  conditional x_0 prediction (the direction changes little from one stride to the next). This
  halves the guidance cost (unconditional network rows 0.50x, guidance CPU per step 0.58x the
  every-step sampler's, ``test_guidance_cost_per_step``) at equal accuracy: over 2 training seeds
  x 4 sampling seeds (72 sequences each, one sequence = 1.4 points) every per-seed CA equals
  every-step guidance's (means 94.4 % and 94.4 %), FID 3.23 / 3.35 against 3.23 / 3.35, E_lm
  +0.002 / +0.005 mm. ``cfg_every=5`` (0.20x rows): CA 95.5 / 94.4 %, FID 3.21 / 3.31, E_lm
  +0.03 mm; 10: FID 4.2, E_lm +0.14 mm; 50 (one direction for the whole pass): FID 9.5, E_lm 3.09 mm.
  ``cfg_from`` / ``cfg_to`` [0 / 1] guide only at steps ``cfg_from * T < t <= cfg_to * T`` (the
  conditional model alone outside; Kynkäänniemi et al. 2024's guidance interval); halving the
  steps this way loses accuracy: ``cfg_to=0.5`` CA 90.6 / 95.5 % (4-seed means), FID 4.4 / 3.8;
  ``cfg_from=0.5`` 89.9 % / FID 6.9 and the middle band 0.25-0.75 87.8 % / FID 8.6 (first training
  seed); earlier screening of ``cfg_from``: 0.1 95.8 % / FID 2.9, 0.25 90.3 % / 9.1, 0.5 87.5 % / 12.8.
  Texts (with ``text_guidance``) enter the same embedding: ``text_share`` of the training
  sequences are conditioned on the WordLlama feature of one of their descriptions instead of the
  label, so one network serves labels and texts (the text BiT of Eq. 10 is trained only with
  ``guidance=classifier``).
* ``parameterization=x0`` [eps] and ``schedule=cosine``, ``diffusion_steps=1000`` [linear, 2000]: the
  network predicts x_0 (the sampler uses the eps it implies), on Nichol & Dhariwal's schedule.
  Motion + cfg with the paper's eps / linear-2000: 68.1 % / FID 13.8 / E_lm 2.04 mm / jerk 104x;
  with x_0 / cosine-1000: 100 % / 0.8 / 1.26 mm / 41x (eta 0.5).
* ``smooth_x0=2`` [0]: every x_0 prediction is low-passed over frames by a Gaussian of this std
  (frames), a projection onto smooth motion like ``clip_x0``'s onto the data range. Without it the
  motion model's samples jitter at 41x the real acceleration: per-frame residual noise of a few
  hundredths of a mm already dominates the real 0.06 mm/frame^2. With it: 100 % / FID 0.9 /
  E_lm 1.09 mm / jerk 1.4x (diversity 0.73 mm against 1.05 without).
* ``eta=0.5`` (DDIM; the paper has no DDIM): eta 0 scored 95.8 % / FID 0.9, eta 0.5 100 % / 0.8.
* ``harmonize_iters=1`` [5]: five passes cost 3x one pass and score 97.2 % / FID 2.4 / E_lm 1.24 mm
  against one pass's 100 % / 0.9 / 1.09 mm (on the paper's backbone 54.2 % against 61.1 %).
* ``pca_components=48`` [None]: diffuse in whitened PCA coordinates (a linear change of
  coordinates); with ``representation=absolute`` the part of an unseen face outside the span is
  carried over from its known frames.
* ``anchor_known=True`` [False]: with one known neutral frame, replacement (Alg. 3) lets the unknown
  frames settle elsewhere (measured on absolute frames: 5-8 mm jump after frame 0); each step
  shifts the x_0 prediction by the known frames' error. ``recon_weight`` offers gradient
  reconstruction guidance (Ho et al. 2022) instead or in addition.
* ``harmonize_from=0.5`` [1.0]: see :meth:`ReverseSampler.sample` (a restart at T erases the pass).
* ``clip_x0=True``: x_0 predictions are clipped to 1.5x the training range, as Ho et al.'s sampler.
* Intensity (not in the paper): with ``guidance=cfg`` each training sequence's relative intensity
  (apex displacement over its label's mean, :func:`fc4dfs.datasets.phases.relative_intensity`)
  enters the condition embedding, dropped alone with ``intensity_dropout=0.5`` so that generation
  without an intensity follows the data; ``generate(..., intensity=x)`` conditions on it (guided
  by the same ``cfg_scale``).
* The noise approximator adds a step-gated skip ``gamma(t) * x_t`` to its read-out; smoke/quick use
  a 3-frame feature embedding, identity augmentation (``identity_mix``, absolute frames only), EMA
  weights and a cosine lr; the ``paper`` budget keeps the paper's per-frame embedding, constant lr
  1e-4, batch 256 and 200 k iterations (architecture sizes are not given in the paper; ours are
  listed in ``budgets``).
* Text features come from WordLlama ``l2_supercat`` (256-d, shipped in its wheel, loaded offline:
  :mod:`fc4dfs.zoo.text`) instead of CLIP (512-d, a download). ``text_weight`` [1] scales the
  cosine term of Eq. 10.
* Eq. 7 / Alg. 1 print ``sqrt(1 - alpha_t)`` in the denominator; we use Ho et al.'s ``sqrt(1 - abar_t)``.
* The guidance Adagrad rate is ``guidance_lr * sqrt(step variance)`` (the paper gives none).
* ``guide_from_mean=False`` [False]: with ``True`` the Adagrad refinement starts from the step's
  mean and the step's noise is added afterwards; with ancestral (``ddpm``) steps the paper's start
  from the noisy sample spends the refinement on removing that noise (see ``ReverseSampler.guide``).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, ClassVar, Sequence as Seq

import numpy as np
import torch
import torch.nn.functional as F

from fc4dfs.datasets.base import Dataset
from fc4dfs.datasets.storage import stable_hash
from fc4dfs.plugins.checkpoint import prefixed, unprefixed
from fc4dfs.plugins.contracts import Budget, Generator
from fc4dfs.plugins.errors import ComponentError
from fc4dfs.zoo.generators.diffusion.data import SequenceBank
from fc4dfs.zoo.generators.diffusion.networks import BiTConfig, GuidanceClassifier, NoiseApproximator
from fc4dfs.zoo.generators.diffusion.optim import EMA, lr_lambda
from fc4dfs.zoo.generators.diffusion.sampling import (SAMPLERS, Objective, ReverseSampler, SamplerConfig,
                                                      label_objective, text_objective)
from fc4dfs.zoo.generators.diffusion.schedule import SCHEDULES, NoiseSchedule
from fc4dfs.zoo.normalise import Normaliser
from fc4dfs.zoo.training import TrainLoop, seed_everything

_ARCH_KEYS = ("d_model", "layers", "heads", "ff_dim", "dropout", "fe_kernel")
GUIDANCE = ("classifier", "cfg")
REPRESENTATIONS = ("absolute", "motion")
PARAMETERIZATIONS = ("eps", "x0")
#: ``preset=paper``: Zou et al.'s sampler and conditioning (with the ``paper`` budget, its training)
PAPER_PRESET: dict[str, Any] = {
    "diffusion_steps": 2000, "schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02, "parameterization": "eps",
    "guidance": "classifier", "sampler": "ddpm", "guidance_lambda": 0.01, "guidance_steps": 3,
    "guide_from_mean": False, "clip_x0": False, "recon_weight": 0.0, "anchor_known": False, "harmonize_iters": 5,
    "harmonize_from": 1.0, "pca_components": None, "train_lengths": None, "smooth_x0": 0.0,
    "representation": "absolute",
}


class DDPMGenerator(Generator):
    """Unconditional landmark-sequence DDPM steered by classifier guidance (Zou et al.)."""

    name: ClassVar[str] = "ddpm"
    version: ClassVar[str] = "5"
    description: ClassVar[str] = ("4D facial expression diffusion model with label and text guidance "
                                  "(Zou et al.)")
    stochastic: ClassVar[bool] = True
    controls: ClassVar[frozenset[str]] = frozenset({"intensity"})

    # smoke-trained and 10 strides: DDIM's eta noise is then far larger than what the model can remove
    conformance_options: ClassVar[dict[str, Any]] = {"sampling_steps": 10, "harmonize_iters": 2, "eta": 0.0}
    defaults: ClassVar[dict[str, Any]] = {
        "preset": "",  # "paper": the paper's sampling and guidance (PAPER_PRESET); given options still win
        "diffusion_steps": 1000,
        "schedule": "cosine",  # "linear" (beta_start -> beta_end, the paper) | "cosine" (Nichol & Dhariwal)
        "beta_start": 1e-4,
        "beta_end": 0.02,
        "parameterization": "x0",  # what the network predicts: "eps" (the paper, Eq. 8) | "x0"
        "guidance": "cfg",  # "classifier" (the paper, Eq. 9) | "cfg" (classifier-free, label dropout)
        "cfg_scale": 2.0,  # cfg: eps_null + s (eps_cond - eps_null); 1 = the conditional model alone
        "cfg_from": 0.0,  # cfg: steps t <= cfg_from * T use the conditional model alone (half the cost per step)
        "cfg_to": 1.0,  # cfg: steps t > cfg_to * T use the conditional model alone (guidance interval, see docstring)
        "cfg_every": 2,  # cfg: unconditional pass every k-th guided step, the others reuse its direction
        "cfg_dropout": 0.1,  # cfg: probability a training sequence loses its label (and intensity)
        "intensity_dropout": 0.5,  # cfg: probability it loses only its intensity (generate without one)
        "sampler": "ddim",  # "ddim" | "ddpm" (the paper's T ancestral steps)
        "sampling_steps": 50,  # DDIM strides; ignored by "ddpm"
        "eta": 0.5,  # DDIM stochasticity (0 = deterministic given x_T; 1 = as ancestral steps), see the docstring
        "guidance_lambda": 0.01,
        "text_guidance": True,  # text control: the text BiT (Eq. 10), or with guidance=cfg a text condition
        "text_share": 0.5,  # cfg with text: probability a training sequence is conditioned on a description
        "text_weight": 1.0,  # weight of the cosine term of Eq. 10 in the refinement objective
        "guidance_steps": 3,
        "guidance_lr": 1.0,
        "guide_from_mean": False,  # refine the step's mean, then add its noise (paper: refine the noisy sample)
        "clip_x0": True,  # clip x_0 predictions to 1.5x the training data's range (normalised)
        "smooth_x0": 2.0,  # low-pass x_0 predictions over frames (Gaussian std in frames; 0 = off)
        "recon_weight": 0.0,
        "anchor_known": True,  # shift x_0 predictions by the known frames' error (False = the paper's Alg. 3/4)
        "harmonize_iters": 1,  # Alg. 4 passes in generate() (paper: 5)
        "harmonize_from": 0.5,  # re-noise level of passes 2.. as a fraction of T (paper: 1.0, see sample())
        "pca_components": 48,  # diffuse in k whitened PCA coordinates of the frames; None = raw coordinates
        "representation": "motion",  # "motion": frames minus frame 0 | "absolute" landmark frames (the paper)
        "train_lengths": None,  # [lo, hi] frame counts for training; None = the data's range
        "sample_batch": 64,
    }
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"identity_mix": 0.5, "fe_kernel": 3, "d_model": 32, "layers": 1, "heads": 2, "ff_dim": 64, "dropout": 0.0,
                  "iterations": 60, "cls_iterations": 40, "text_iterations": 40, "batch": 16, "lr": 1e-3, "block": 20,
                  "lr_schedule": "cosine", "ema": 0.9},
        "quick": {"identity_mix": 0.5, "fe_kernel": 3, "d_model": 64, "layers": 2, "heads": 4, "ff_dim": 128, "dropout": 0.0,
                  "iterations": 3000, "cls_iterations": 400, "text_iterations": 400, "batch": 32, "lr": 1e-3, "block": 50,
                  "lr_schedule": "cosine", "ema": 0.995},
        "paper": {"identity_mix": 0.0, "fe_kernel": 1, "d_model": 256, "layers": 6, "heads": 8, "ff_dim": 1024, "dropout": 0.1,
                  "iterations": 200_000, "cls_iterations": 50_000, "text_iterations": 50_000, "batch": 256, "lr": 1e-4, "block": 1000,
                  "lr_schedule": "constant", "ema": 0.9999},
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        if o["preset"] not in ("", "paper"):
            raise ComponentError(f"ddpm option preset must be 'paper' or empty, got {o['preset']!r}")
        if o["preset"] == "paper":
            self.options = o = {**self.defaults, **PAPER_PRESET, **{k: o[k] for k in options}}
        for key, allowed in (("sampler", SAMPLERS), ("schedule", SCHEDULES), ("guidance", GUIDANCE),
                             ("parameterization", PARAMETERIZATIONS), ("representation", REPRESENTATIONS)):
            if o[key] not in allowed:
                raise ComponentError(f"ddpm option {key} must be one of {allowed}, got {o[key]!r}")
        for key in ("cfg_dropout", "intensity_dropout", "cfg_from"):
            if not 0.0 <= float(o[key]) < 1.0:
                raise ComponentError(f"ddpm option {key} must be in [0, 1), got {o[key]!r}")
        if not float(o["cfg_from"]) < float(o["cfg_to"]) <= 1.0:
            raise ComponentError(f"ddpm option cfg_to must be in (cfg_from, 1], got {o['cfg_to']!r}")
        for key in ("diffusion_steps", "sampling_steps", "harmonize_iters", "sample_batch", "cfg_every"):
            if int(o[key]) < 1:
                raise ComponentError(f"ddpm option {key} must be >= 1, got {o[key]!r}")
        if not 0.0 < float(o["harmonize_from"]) <= 1.0:
            raise ComponentError(f"ddpm option harmonize_from must be in (0, 1], got {o['harmonize_from']!r}")
        self.eps_model: NoiseApproximator | None = None
        self.classifier: GuidanceClassifier | None = None
        self.text_net: GuidanceClassifier | None = None
        self.normalizer: Normaliser | None = None  # field "frames"; statistic "neutral" [3 L] (mm)
        self.device = torch.device("cpu")
        self._meta: dict[str, Any] = {}

    def active_controls(self) -> frozenset[str]:
        """``intensity`` with ``guidance=cfg`` (it conditions the network beside the label)."""
        return frozenset({"intensity"}) if self.options["guidance"] == "cfg" else frozenset()

    # -- pieces ---------------------------------------------------------------------------
    @property
    def schedule(self) -> NoiseSchedule:
        o = self.options
        return NoiseSchedule(int(o["diffusion_steps"]), float(o["beta_start"]), float(o["beta_end"]), o["schedule"])

    def sampler_config(self, **overrides: Any) -> SamplerConfig:
        """The sampler the options describe; ``overrides`` replace fields (e.g. ``sampler="ddpm"``)."""
        o = self.options
        cfg = dict(sampler=o["sampler"], sampling_steps=int(o["sampling_steps"]), eta=float(o["eta"]),
                   guidance_lambda=float(o["guidance_lambda"]), guidance_steps=int(o["guidance_steps"]),
                   guidance_lr=float(o["guidance_lr"]), recon_weight=float(o["recon_weight"]),
                   anchor_known=bool(o["anchor_known"]), guide_from_mean=bool(o["guide_from_mean"]),
                   smooth_x0=float(o["smooth_x0"]),
                   clip_x0=float(self._meta["clip"]) if o["clip_x0"] and "clip" in self._meta else None)
        cfg.update(overrides)
        try:
            return SamplerConfig(**cfg)
        except ValueError as e:
            raise ComponentError(f"ddpm sampler: {e}") from None

    def _build(self, meta: dict[str, Any]) -> None:
        eps_cfg = BiTConfig(**meta["bit"])
        cond = meta.get("cond")
        text = meta.get("text")
        self.eps_model = NoiseApproximator(eps_cfg, int(cond["labels"]) if cond else 0, bool(cond and cond["intensity"]),
                                           int(text["dim"]) if cond and text else 0).to(self.device)
        self.classifier = (GuidanceClassifier(eps_cfg, int(meta["num_labels"])).to(self.device)
                           if meta.get("classifier", True) else None)
        self.text_net = GuidanceClassifier(eps_cfg, int(text["dim"])).to(self.device) if text and not cond else None
        self._meta = meta

    # -- training -------------------------------------------------------------------------
    def fit(self, data: Dataset, budget: Budget, seed: int = 0, device: str = "cpu",
            workdir: Path | None = None, progress: bool = True) -> dict[str, Any]:
        """Train the noise approximator (Eq. 8), then the guidance networks on noisy ``x_t``: the
        label classifier (Eq. 9) and, with ``text_guidance``, the text-feature BiT (Eq. 10)."""
        hp = budget.pick(self.budgets)
        start = time.monotonic()
        self.device = torch.device(device)
        bank = SequenceBank(data)
        motion = self.options["representation"] == "motion"
        neutral = np.mean([s[0] for s in bank.seqs], axis=0).astype(np.float32)
        if motion:
            bank.seqs = [s - s[:1] for s in bank.seqs]
        frames = np.concatenate([s[1:] if motion else s for s in bank.seqs], 0)
        self.normalizer = Normaliser().fit_standardise("frames", frames, self.options["pca_components"])
        self.normalizer.add_statistic("neutral", neutral)
        seqs = [self.normalizer.encode("frames", s) for s in bank.seqs]
        bank.seqs = seqs
        bank.feature_dim = self.normalizer.dim("frames")
        lo, hi = self._length_range(bank)
        text_table, text_choices = self._training_texts(data) if self.options["text_guidance"] else (None, [])
        cfg_mode = self.options["guidance"] == "cfg"
        intensity = self._relative_intensities(data) if cfg_mode else None
        meta = {"bit": {"feature_dim": bank.feature_dim, **{k: hp[k] for k in _ARCH_KEYS}},
                "num_labels": len(bank.labels), "train_lengths": [lo, hi], "classifier": not cfg_mode,
                "cond": {"labels": len(bank.labels), "intensity": intensity is not None} if cfg_mode else None,
                "clip": round(1.5 * float(max(np.abs(s).max() for s in seqs)), 4),
                "text": None if text_table is None else {"encoder": self._encoder().name,
                                                         "dim": int(text_table.shape[1])}}
        seed_everything(seed)
        self._build(meta)
        assert self.eps_model is not None
        schedule = self.schedule
        T = schedule.num_steps
        alpha_bar = torch.as_tensor(schedule.alpha_bar, dtype=torch.float32, device=self.device)
        run_hash = stable_hash({"config": self.config, "hp": hp, "seed": seed, "data": data.fingerprint})
        batch, block = int(hp["batch"]), int(hp["block"])
        mix = 0.0 if motion else float(hp["identity_mix"])  # motion carries no anatomy to mix
        label_ids = torch.as_tensor(bank.label_ids, device=self.device)
        x0_target = self.options["parameterization"] == "x0"
        p_null, p_no_int = float(self.options["cfg_dropout"]), float(self.options["intensity_dropout"])
        intens = torch.as_tensor(intensity, dtype=torch.float32, device=self.device) if intensity is not None else None
        text_feats = torch.as_tensor(text_table, device=self.device) if cfg_mode and text_table is not None else None
        p_text = float(self.options["text_share"])

        def draw(rng: np.random.Generator, t_min: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray,
                                                                  torch.Tensor]:
            idx = rng.integers(0, len(bank), size=batch)
            x0 = bank.batch(idx, int(rng.integers(lo, hi + 1)))
            if mix > 0:
                x0 = bank.mix_identities(x0, rng, mix)
            x0 = torch.as_tensor(x0, device=self.device)
            t = torch.randint(t_min, T + 1, (batch,)).to(self.device)
            noise = torch.randn(x0.shape).to(self.device)
            ab = alpha_bar[t].view(-1, 1, 1)
            return ab.sqrt() * x0 + (1 - ab).sqrt() * noise, t, noise, idx, x0

        def conditions(idx: np.ndarray, rng: np.random.Generator) -> dict[str, torch.Tensor]:
            """cfg: the batch's labels and intensities, dropped as Ho & Salimans' label dropout."""
            if not cfg_mode:
                return {}
            ids = torch.as_tensor(idx, device=self.device)
            drop = torch.as_tensor(rng.random(len(idx)) < p_null, device=self.device)
            labels = torch.where(drop, torch.full_like(label_ids[ids], -1), label_ids[ids])
            out = {"labels": labels}
            if text_feats is not None:
                said = torch.as_tensor(rng.random(len(idx)) < p_text, device=self.device) & ~drop
                rows = torch.as_tensor([int(rng.choice(text_choices[i])) for i in idx], device=self.device)
                out["text"] = torch.where(said.unsqueeze(1), text_feats[rows], float("nan"))
                out["labels"] = torch.where(said, torch.full_like(labels, -1), labels)
            if intens is not None:
                gone = drop | torch.as_tensor(rng.random(len(idx)) < p_no_int, device=self.device)
                out["intensity"] = torch.where(gone, torch.full_like(intens[ids], float("nan")), intens[ids])
            return out

        eps_opt = torch.optim.Adam(self.eps_model.parameters(), lr=float(hp["lr"]))
        n_eps = math.ceil(int(hp["iterations"]) / block)
        eps_sched = torch.optim.lr_scheduler.LambdaLR(eps_opt, lr_lambda(n_eps * block, str(hp["lr_schedule"])))
        ema = EMA(self.eps_model, float(hp["ema"]))

        def eps_epoch(epoch: int, rng: np.random.Generator) -> dict[str, float]:
            self.eps_model.train()
            total = 0.0
            for _ in range(block):
                x_t, t, noise, idx, x0 = draw(rng, 1)
                loss = F.mse_loss(self.eps_model(x_t, t, **conditions(idx, rng)), x0 if x0_target else noise)
                eps_opt.zero_grad(set_to_none=True)
                loss.backward()
                eps_opt.step()
                eps_sched.step()
                ema.update()
                total += loss.item()
            return {"loss": total / block}

        def cls_epoch(epoch: int, rng: np.random.Generator) -> dict[str, float]:
            assert self.classifier is not None
            self.classifier.train()
            total, correct = 0.0, 0
            for _ in range(block):
                x_t, t, _, idx, _ = draw(rng, 0)
                y = label_ids[torch.as_tensor(idx, device=self.device)]
                logits = self.classifier(x_t, t)
                loss = F.cross_entropy(logits, y)
                cls_opt.zero_grad(set_to_none=True)
                loss.backward()
                cls_opt.step()
                cls_sched.step()
                total += loss.item()
                correct += int((logits.argmax(1) == y).sum())
            return {"ce": total / block, "acc": correct / (block * batch)}

        eps_loop = TrainLoop("ddpm_eps", {"model": self.eps_model, "opt": eps_opt, "sched": eps_sched, "ema": ema},
                             n_eps, seed, run_hash, workdir, progress)
        eps_hist = eps_loop.run(eps_epoch)
        ema.copy_to(self.eps_model)  # sample with the averaged weights
        cls_report = None
        if self.classifier is not None:
            cls_opt = torch.optim.Adam(self.classifier.parameters(), lr=float(hp["lr"]))
            n_cls = math.ceil(int(hp["cls_iterations"]) / block)
            cls_sched = torch.optim.lr_scheduler.LambdaLR(cls_opt, lr_lambda(n_cls * block, str(hp["lr_schedule"])))
            cls_loop = TrainLoop("ddpm_cls", {"model": self.classifier, "opt": cls_opt, "sched": cls_sched},
                                 n_cls, seed + 1, run_hash, workdir, progress)
            cls_hist = cls_loop.run(cls_epoch)
            self.classifier.eval()
            cls_report = cls_loop.report(history=[round(h["acc"], 4) for h in cls_hist])
        text_report = None if text_feats is None else {"conditioning": "cfg", "descriptions": int(len(text_table)),
                                                        "share": p_text}
        if self.text_net is not None and text_table is not None:
            text_report = self._fit_text(draw, text_table, text_choices, hp, seed, run_hash, workdir, progress)
        self.eps_model.eval()
        self.topology = data.topology
        self.labels = list(bank.labels)
        self.train_report = {
            "budget": budget.name, "seconds": round(time.monotonic() - start, 2),
            "iterations": eps_loop.epochs * block, "train_lengths": [lo, hi],
            "eps": eps_loop.report(history=[round(h["loss"], 5) for h in eps_hist]),
            "classifier": cls_report,
            "text": text_report,
        }
        return self.train_report

    @staticmethod
    def _relative_intensities(data: Dataset) -> np.ndarray:
        """Per training sequence, its apex displacement relative to its label's mean (measured on the
        meshes by :func:`fc4dfs.datasets.phases.relative_intensity`, 1 = typical apex): ``[N]`` float32."""
        from fc4dfs.datasets.phases import label_peaks, relative_intensity

        peaks = label_peaks(data.sequences)
        return np.array([relative_intensity(s.frames, peaks[s.label]) for s in data.sequences], dtype=np.float32)

    @staticmethod
    def _encoder() -> Any:
        from fc4dfs.zoo.text import load_text_encoder

        return load_text_encoder()

    def _training_texts(self, data: Dataset) -> tuple[np.ndarray, list[np.ndarray]]:
        """Unit text features of every distinct description ``[N, E]`` and, per training sequence,
        the rows of its descriptions (:meth:`Dataset.sequence_texts`)."""
        per_seq = [data.sequence_texts(s.label, s.kind) for s in data.sequences]
        vocab = sorted({t for texts in per_seq for t in texts})
        row = {t: i for i, t in enumerate(vocab)}
        table = self._encoder().encode(vocab)
        return table, [np.array([row[t] for t in texts], dtype=np.int64) for texts in per_seq]

    def _fit_text(self, draw: Any, table: np.ndarray, choices: list[np.ndarray], hp: dict[str, Any], seed: int,
                  run_hash: str, workdir: Path | None, progress: bool) -> dict[str, Any]:
        """Train the text BiT on noisy ``x_t`` to maximise ``cos(BiT(x_t, t), E(text of x_0))`` (Eq. 10)."""
        assert self.text_net is not None
        block = int(hp["block"])
        feats = torch.as_tensor(table, device=self.device)
        opt = torch.optim.Adam(self.text_net.parameters(), lr=float(hp["lr"]))
        n_txt = math.ceil(int(hp["text_iterations"]) / block)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(n_txt * block, str(hp["lr_schedule"])))

        def text_epoch(epoch: int, rng: np.random.Generator) -> dict[str, float]:
            self.text_net.train()
            total = 0.0
            for _ in range(block):
                x_t, t, _, idx, _ = draw(rng, 0)
                rows = torch.as_tensor([int(rng.choice(choices[i])) for i in idx], device=self.device)
                cos = F.cosine_similarity(self.text_net(x_t, t), feats[rows], dim=-1)
                loss = (1.0 - cos).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += cos.mean().item()
            return {"cos": total / block}

        loop = TrainLoop("ddpm_text", {"model": self.text_net, "opt": opt, "sched": sched},
                         n_txt, seed + 2, run_hash, workdir, progress)
        hist = loop.run(text_epoch)
        self.text_net.eval()
        return loop.report(history=[round(h["cos"], 4) for h in hist])

    def _length_range(self, bank: SequenceBank) -> tuple[int, int]:
        spec = self.options["train_lengths"]
        if spec is None:
            return bank.length_range()
        try:
            lo, hi = (int(v) for v in spec)
        except (TypeError, ValueError):
            raise ComponentError(f"ddpm option train_lengths must be [lo, hi], got {spec!r}") from None
        if not 2 <= lo <= hi:
            raise ComponentError(f"ddpm option train_lengths must satisfy 2 <= lo <= hi, got {spec!r}")
        return lo, hi

    # -- persistence ------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        assert self.eps_model is not None and self.normalizer is not None
        text = prefixed("txt", self.text_net.state_dict()) if self.text_net is not None else {}
        cls = prefixed("cls", self.classifier.state_dict()) if self.classifier is not None else {}
        return {**prefixed("eps", self.eps_model.state_dict()), **cls, **text,
                **prefixed("norm", self.normalizer.state_dict())}

    def state_meta(self) -> dict[str, Any]:
        return dict(self._meta)

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], device: str = "cpu") -> None:
        self.device = torch.device(device)
        self._build(meta)
        assert self.eps_model is not None
        self.eps_model.load_state_dict(unprefixed("eps", tensors))
        self.eps_model.eval()
        if self.classifier is not None:
            self.classifier.load_state_dict(unprefixed("cls", tensors))
            self.classifier.eval()
        if self.text_net is not None:
            self.text_net.load_state_dict(unprefixed("txt", tensors))
            self.text_net.eval()
        self.normalizer = Normaliser.from_state(unprefixed("norm", tensors))

    # -- sampling -----------------------------------------------------------------------------
    def _sampler(self, label_ids: np.ndarray | None = None, intensity: np.ndarray | None = None,
                 text_feats: np.ndarray | None = None, **overrides: Any) -> ReverseSampler:
        o, T = self.options, self.schedule.num_steps
        scale = float(overrides.pop("cfg_scale", o["cfg_scale"]))
        lo, hi = (float(overrides.pop(key, o[key])) * T for key in ("cfg_from", "cfg_to"))
        every = int(overrides.pop("cfg_every", o["cfg_every"]))
        return ReverseSampler(self.schedule, self._denoiser(label_ids, intensity, text_feats, scale, (lo, hi), every),
                              self.sampler_config(**overrides))

    def _denoiser(self, label_ids: np.ndarray | None, intensity: np.ndarray | None, text_feats: np.ndarray | None,
                  scale: float, interval: tuple[float, float] = (0.0, math.inf), every: int = 1) -> Any:
        """``eps(x_t [B, F, k], t [B])`` for the sampler: the network's eps, or the eps of its x_0
        prediction; with ``guidance=cfg`` and labels, texts or intensities,
        ``eps_null + s (eps_cond - eps_null)`` (Ho & Salimans 2022, Eq. 6 with w = s - 1) from one
        doubled batch at steps ``lo < t <= hi`` of ``interval`` (the guidance interval of
        Kynkäänniemi et al. 2024), the conditional output alone outside it. With ``every`` = k > 1
        only every k-th guided step of a reverse pass runs the doubled batch; the others add the
        last guidance direction ``(s - 1) (out_cond - out_null)`` (in the network's output space:
        x_0 or eps) to their conditional output. A step with a larger ``t`` than the previous call
        starts a new reverse pass."""
        model, schedule = self.eps_model, self.schedule
        assert model is not None
        x0_param = self.options["parameterization"] == "x0"
        cond = model.cond is not None and any(c is not None for c in (label_ids, intensity, text_feats))
        dev = self.device
        lo, hi = interval
        last: dict[str, Any] = {"t": math.inf, "guided": 0, "direction": None}

        def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if cond:
                b, step = x.shape[0], float(t[0])
                if step >= last["t"]:
                    last.update(guided=0, direction=None)
                last["t"] = step
                labels = torch.as_tensor(label_ids if label_ids is not None else np.full(b, -1), device=dev).long()
                inten = (torch.as_tensor(intensity, dtype=torch.float32, device=dev) if intensity is not None
                         else torch.full((b,), float("nan"), device=dev))
                text = torch.as_tensor(text_feats, dtype=torch.float32, device=dev) if text_feats is not None else None
                guided = scale != 1.0 and lo < step <= hi
                if guided and (last["guided"] % every == 0 or last["direction"] is None):
                    null_l, null_i = torch.full_like(labels, -1), torch.full_like(inten, float("nan"))
                    both_text = None if text is None else torch.cat([text, torch.full_like(text, float("nan"))])
                    both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null_l]),
                                 torch.cat([inten, null_i]), both_text)
                    out_c, out_u = both[:b], both[b:]
                    out = out_u + scale * (out_c - out_u)
                    if every > 1:
                        last["direction"] = (scale - 1.0) * (out_c - out_u).detach()
                else:
                    out = model(x, t, labels, inten, text)
                    if guided:
                        out = out + last["direction"]
                last["guided"] += int(guided)
            else:
                out = model(x, t)
            return schedule.eps_from_x0(x, t, out) if x0_param else out

        return eps

    def _objective(self, label_ids: np.ndarray | None, text_feats: np.ndarray | None) -> Objective | None:
        """The guidance objective of Alg. 1 (labels) or Alg. 2 (text features ``[B, E]``), or None
        (labels and texts under ``guidance=cfg`` condition the network instead)."""
        if label_ids is not None:
            if self.classifier is None:
                return None
            return label_objective(self.classifier, torch.as_tensor(label_ids, device=self.device))
        if text_feats is not None:
            if self.text_net is None:
                return None
            return text_objective(self.text_net, torch.as_tensor(text_feats, device=self.device),
                                  float(self.options["text_weight"]))
        return None

    def text_features(self, texts: Seq[str]) -> np.ndarray:
        """Unit features ``[len(texts), E]`` of the texts under the encoder the text BiT was trained with.

        Raises ComponentError when this model was trained without text guidance or a text is empty.
        """
        self._require_fitted()
        if not self._meta.get("text"):
            raise ComponentError("this ddpm was trained without text guidance (option text_guidance=false); "
                                 "train it with text_guidance=true to condition on text")
        if isinstance(texts, str):
            raise ComponentError("texts must be a list of strings, got one string")
        return self._encoder().encode(list(texts))

    def _run(self, length: int, batch: int, seed: int | None, known: np.ndarray | None, mask: np.ndarray | None,
             label_ids: np.ndarray | None, harmonize_iters: int, text_feats: np.ndarray | None = None,
             intensity: np.ndarray | None = None, **sampler_overrides: Any) -> np.ndarray:
        """Sample ``[batch, length, D]`` in mm, in chunks of ``sample_batch``, all noise from ``seed``.

        With ``representation=motion`` the model's frames are displacements from a reference frame:
        each sequence's first known frame (for ``generate`` the neutral), else the mean training
        neutral; a reference other than frame 0 shifts the displacements by a constant, which
        ``anchor_known`` absorbs.
        """
        assert self.normalizer is not None
        neutral = self.normalizer.stat("neutral").cpu().numpy()
        motion = self.options["representation"] == "motion"
        gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
        chunk = int(self.options["sample_batch"])
        d, k = self.normalizer.stat("frames_mean").shape[0], self.normalizer.dim("frames")
        out = []
        for a in range(0, batch, chunk):
            b = min(batch, a + chunk)
            kn = mk = None
            offset = np.zeros((b - a, 1, d), dtype=np.float32)
            if motion:
                offset = offset + neutral
            if known is not None and mask is not None:
                flat = known[a:b].reshape(b - a, length, d)
                mk = torch.as_tensor(mask[a:b], dtype=torch.bool, device=self.device)
                if motion:
                    first = flat[np.arange(b - a), mask[a:b].argmax(1)]
                    offset = np.where(mask[a:b].any(1)[:, None], first, neutral)[:, None].astype(np.float32)
                    kn = torch.as_tensor(self.normalizer.encode("frames", flat - offset), device=self.device)
                else:
                    kn = torch.as_tensor(self.normalizer.encode("frames", flat), device=self.device)
                    offset = self._known_residual(flat, mask[a:b])
            guidance = self._objective(None if label_ids is None else label_ids[a:b],
                                       None if text_feats is None else text_feats[a:b])
            sampler = self._sampler(None if label_ids is None else label_ids[a:b],
                                    None if intensity is None else intensity[a:b],
                                    None if text_feats is None else text_feats[a:b], **sampler_overrides)
            x0 = sampler.sample((b - a, length, k), gen, self.device, kn, mk, guidance, harmonize_iters,
                                float(self.options["harmonize_from"]))
            out.append(self.normalizer.decode("frames", x0.detach().cpu().numpy()) + offset)
        return np.concatenate(out, 0)

    def _known_residual(self, flat: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Per sequence, the mean part of the known frames outside the PCA span ``[B, 1, D]``.

        Diffusing in PCA coordinates cannot represent an unseen face exactly; this residual (mostly
        anatomy detail) is carried over to the generated frames. Zero without PCA.
        """
        res = self.normalizer.residual("frames", flat) * mask[..., None]  # type: ignore[union-attr]
        count = np.maximum(mask.sum(1), 1)[:, None, None]
        return (res.sum(1, keepdims=True) / count).astype(np.float32)

    def generate(self, neutral_landmarks: np.ndarray, labels: Seq[str], length: int,
                 fps: float | None = None, seed: int | None = None,
                 intensity: float | Seq[float] | None = None) -> np.ndarray:
        """Geometry-adaptive generation with label control (Alg. 4): frame 0 is the given neutral.

        ``fps`` is ignored: the model generates a whole expression over ``length`` frames, as it was
        trained on whole sequences resampled to random lengths. ``seed=None`` means seed 0.
        ``intensity`` (one or B values in [0, 1.5], 1 = the label's typical apex; None = as in the
        data) conditions the network next to the label; it needs ``guidance=cfg`` (ComponentError
        otherwise).
        """
        self.check_generate_inputs(neutral_landmarks, labels, length)
        known, mask = self._neutral_known(neutral_landmarks, length)
        return self.fill(known, mask, list(labels), seed=seed, harmonize_iters=int(self.options["harmonize_iters"]),
                         intensity=intensity)

    def generate_text(self, neutral_landmarks: np.ndarray, texts: Seq[str], length: int,
                      fps: float | None = None, seed: int | None = None) -> np.ndarray:
        """Geometry-adaptive generation guided by text (Alg. 4 with Alg. 2's objective): ``[B, T, L, 3]`` mm.

        ``texts`` has B free-form descriptions ("from the neutral face to a big smile"); frame 0 is the
        given neutral. Raises ComponentError for a model trained without text guidance.
        """
        self.check_generate_inputs(neutral_landmarks, list(texts), length)
        known, mask = self._neutral_known(neutral_landmarks, length)
        return self.fill(known, mask, seed=seed, harmonize_iters=int(self.options["harmonize_iters"]), texts=texts)

    @staticmethod
    def _neutral_known(neutral_landmarks: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
        b, n_lm = neutral_landmarks.shape[:2]
        known = np.zeros((b, int(length), n_lm, 3), dtype=np.float32)
        known[:, 0] = neutral_landmarks
        mask = np.zeros((b, int(length)), dtype=bool)
        mask[:, 0] = True
        return known, mask

    def _conditions(self, batch: int, labels: Seq[str] | None,
                    texts: Seq[str] | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        if labels is not None and texts is not None:
            raise ComponentError("pass labels or texts, not both")
        for what, given in (("labels", labels), ("texts", texts)):
            if given is not None and len(given) != batch:
                raise ComponentError(f"{what} has {len(given)} entries but the batch is {batch}")
        ids = self.label_ids(labels) if labels is not None else None
        feats = self.text_features(texts) if texts is not None else None
        return ids, feats

    def fill(self, known: np.ndarray, mask: np.ndarray, labels: Seq[str] | None = None,
             seed: int | None = None, harmonize_iters: int = 1, texts: Seq[str] | None = None,
             intensity: float | Seq[float] | None = None, **sampler_overrides: Any) -> np.ndarray:
        """Expression filling (Alg. 3; with ``labels`` or ``texts`` and ``harmonize_iters > 1``, Alg. 4).

        ``known`` is ``[B, T, L, 3]`` in mm (values where ``mask`` is False are ignored), ``mask`` is
        ``[B, T]`` bool (True = known frame), ``labels`` optional B names for label guidance,
        ``texts`` optional B descriptions for text guidance (not both), ``intensity`` optional B
        values (see :meth:`generate`). Returns ``[B, T, L, 3]``
        float32 with known frames copied exactly. ``sampler_overrides`` replace sampler fields for
        this call (e.g. ``sampler="ddpm"``, ``sampling_steps=20`` or ``cfg_scale=1``).
        """
        topo = self._require_fitted()
        known = np.asarray(known, dtype=np.float32)
        mask = np.asarray(mask, dtype=bool)
        if known.ndim != 4:
            raise ComponentError(f"known must be a [B, T, L, 3] array, got shape {known.shape}")
        topo.check_landmarks(known, "known")
        if mask.shape != known.shape[:2]:
            raise ComponentError(f"mask must be [B, T] = {known.shape[:2]}, got {mask.shape}")
        if known.shape[1] < 2:
            raise ComponentError(f"known must have >= 2 frames, got {known.shape[1]}")
        ids, feats = self._conditions(known.shape[0], labels, texts)
        b, length = known.shape[:2]
        levels, _ = self.check_controls(b, intensity=intensity)
        flat = self._run(length, b, seed, known, mask, ids, harmonize_iters, feats,
                         None if levels is None else np.asarray(levels, np.float32), **sampler_overrides)
        out = flat.reshape(known.shape)
        out[mask] = known[mask]
        return out.astype(np.float32)

    def sample(self, labels: Seq[str] | None, length: int, seed: int | None = None, texts: Seq[str] | None = None,
               **sampler_overrides: Any) -> np.ndarray:
        """Label control (Alg. 1) or, with ``texts`` instead of ``labels``, text control (Alg. 2):
        whole sequences, facial anatomy included, ``[B, length, L, 3]`` mm."""
        topo = self._require_fitted()
        if int(length) < 2:
            raise ComponentError(f"length must be >= 2 frames, got {length}")
        if labels is None and texts is None:
            raise ComponentError("sample needs labels or texts")
        batch = len(labels if labels is not None else texts)  # type: ignore[arg-type]
        ids, feats = self._conditions(batch, labels, texts)
        flat = self._run(int(length), batch, seed, None, None, ids, 1, feats, **sampler_overrides)
        return flat.reshape(batch, int(length), topo.num_landmarks, 3).astype(np.float32)
