"""Small components registered through the public plugin API, used by the skeleton's tests.

They are real (they train and predict honestly) but tiny: the ``tiny`` dataset of the conformance kit
and ``sgd_linear``, a linear landmark-displacement -> vertex-displacement decoder trained by SGD
through the shared TrainLoop (so resume-after-kill can be tested on it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from fc4dfs.datasets import Dataset
from fc4dfs.plugins import Budget, ComponentSpec, Decoder, hookimpl
from fc4dfs.zoo.training import TrainLoop

fc4dfs_api_version = "2.0"


class SGDLinearDecoder(Decoder):
    name: ClassVar[str] = "sgd_linear"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Linear map from landmark to vertex displacements, trained by SGD (tests)"
    defaults: ClassVar[dict[str, Any]] = {"lr": 0.05}
    budgets: ClassVar[dict[str, dict[str, Any]]] = {"smoke": {"epochs": 8}, "quick": {"epochs": 200},
                                                    "paper": {"epochs": 1000}}

    def _build(self, n_in: int, n_out: int) -> None:
        self.net = torch.nn.Linear(n_in, n_out)

    def fit(self, data: Dataset, budget: Budget, seed: int = 0, device: str = "cpu",
            workdir: Path | None = None, progress: bool = True) -> dict[str, Any]:
        hp = budget.pick(self.budgets)
        torch.manual_seed(seed)
        x, y = [], []
        for s in data.sequences:
            lm, fr = s.landmarks, np.asarray(s.frames)
            x.append((lm - lm[0]).reshape(len(lm), -1))
            y.append((fr - fr[0]).reshape(len(fr), -1))
        xt, yt = torch.from_numpy(np.concatenate(x)), torch.from_numpy(np.concatenate(y))
        self.topology, self.labels = data.topology, list(data.labels)
        self._build(xt.shape[1], yt.shape[1])
        opt = torch.optim.Adam(self.net.parameters(), lr=float(self.options["lr"]))
        loop = TrainLoop(self.name, {"net": self.net, "opt": opt}, hp["epochs"], seed, self.config_hash,
                         workdir, progress)

        def epoch(_: int, rng: np.random.Generator) -> dict[str, float]:
            order = torch.from_numpy(rng.permutation(len(xt)))
            total = 0.0
            for i in range(0, len(order), 256):
                b = order[i:i + 256]
                loss = (self.net(xt[b]) - yt[b]).abs().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
            return {"loss": total}

        loop.run(epoch)
        return loop.report()

    def decode(self, neutral_mesh: np.ndarray, neutral_landmarks: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        self.check_decode_inputs(neutral_mesh, neutral_landmarks, landmarks)
        b, t = landmarks.shape[:2]
        with torch.no_grad():
            d = self.net(torch.from_numpy((landmarks - neutral_landmarks[:, None]).reshape(b * t, -1).astype(np.float32)))
        return (neutral_mesh[:, None] + d.numpy().reshape(b, t, -1, 3)).astype(np.float32)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.net.state_dict())

    def state_meta(self) -> dict[str, Any]:
        return {"n_in": self.net.in_features, "n_out": self.net.out_features}

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], device: str = "cpu") -> None:
        self._build(meta["n_in"], meta["n_out"])
        self.net.load_state_dict(tensors)


def tiny(**options: Any) -> Dataset:
    from fc4dfs.datasets.fixtures import tiny_dataset

    return tiny_dataset(**options)


@hookimpl
def fc4dfs_decoders() -> list[ComponentSpec]:
    return [ComponentSpec("decoder", "sgd_linear", "fc4dfs_test_components:SGDLinearDecoder",
                          SGDLinearDecoder.description)]


@hookimpl
def fc4dfs_datasets() -> list[ComponentSpec]:
    return [ComponentSpec("dataset", "tiny", "fc4dfs_test_components:tiny", "The conformance kit's tiny dataset")]
