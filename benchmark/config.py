"""RunConfig: everything that determines a run's result. A run is a pure function of it."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from fc4dfs.benchmark.errors import UserError
from fc4dfs.datasets.storage import stable_hash


@dataclass(frozen=True)
class RunConfig:
    """The resolved configuration of one run (one protocol, components, budget, seed)."""

    protocol: str
    dataset: str
    generator: str | None = None
    decoder: str | None = None
    budget: str = "quick"
    seed: int = 0
    device: str = "cpu"
    generator_options: dict[str, Any] = field(default_factory=dict)
    decoder_options: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    protocol_options: dict[str, Any] = field(default_factory=dict)
    budget_overrides: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        return cls(**d)

    @property
    def hash(self) -> str:
        """Hash of what determines the result (the device is left out: it should not change scores).

        Dataset paths are part of it: a finished run is only reused for the same data location.
        """
        d = self.to_dict()
        d.pop("device")
        return stable_hash(d)

    @property
    def run_id(self) -> str:
        parts = [self.protocol, self.dataset, _tag(self.generator, self.generator_options),
                 _tag(self.decoder, self.decoder_options), self.budget, f"s{self.seed}", self.hash[:8]]
        return "_".join(p for p in parts if p)

    def describe(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _tag(name: str | None, options: dict[str, Any]) -> str:
    if not name:
        return ""
    return name.replace("+", "p") + (f"-{stable_hash(options, 6)}" if options else "")


def parse_options(pairs: list[str] | None, what: str) -> dict[str, Any]:
    """Parse ``key=value`` pairs; values are JSON where they parse (numbers, true/false, lists)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UserError(f"{what} expects key=value, got {pair!r}")
        key, _, raw = pair.partition("=")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = {"True": True, "False": False}.get(raw, raw)
        out[key.strip()] = value
    return out
