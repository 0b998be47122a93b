"""ComponentSpec: what a plugin registers — a name, a lazily imported target and provenance."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from typing import Any

KINDS = ("generator", "decoder", "dataset", "metric", "protocol")


@dataclass(frozen=True)
class ComponentSpec:
    """A registered component.

    ``target`` is ``"package.module:attribute"``: a class for generators, decoders, metrics and
    protocols, a factory ``(**options) -> Dataset`` for datasets. ``version`` must change whenever
    the component's scores would.
    """

    kind: str
    name: str
    target: str
    description: str
    version: str = "1"
    provider: str = ""
    #: default options of a registered variant (e.g. an ablation of another component's class)
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"component kind must be one of {KINDS}, got {self.kind!r}")
        if not self.name or not self.name.replace("_", "").replace("-", "").replace("+", "").isalnum():
            raise ValueError(f"invalid component name {self.name!r}")
        if ":" not in self.target:
            raise ValueError(f"target of {self.name!r} must be 'module:attribute', got {self.target!r}")

    def with_provider(self, provider: str) -> "ComponentSpec":
        return replace(self, provider=provider)

    def load(self) -> Any:
        """Import and return the target."""
        module, _, attr = self.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        cls_version = getattr(obj, "version", None)
        if isinstance(cls_version, str) and cls_version != self.version:
            raise RuntimeError(f"{self.kind} {self.name!r}: registered version {self.version} differs from "
                               f"its class's version {cls_version}")
        return obj
