"""Plugin discovery and the registry of named components.

Plugins are modules under the entry-point group ``fc4dfs`` (the built-ins included). A plugin
that fails to import, declares an incompatible API version or breaks while registering is
recorded as a :class:`PluginFailure` and the others keep working; in strict mode (``--strict``
or ``FC4DFS_STRICT_PLUGINS=1``) the failure is raised instead.
"""
from __future__ import annotations

import difflib
import importlib
import os
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, Iterable

import pluggy

from fc4dfs.plugins import hookspecs
from fc4dfs.plugins.spec import KINDS, ComponentSpec

ENTRY_POINT_GROUP = "fc4dfs"
STRICT_ENV = "FC4DFS_STRICT_PLUGINS"
#: comma-separated plugin modules to load without packaging them (``mypkg.plugin,other``)
MODULES_ENV = "FC4DFS_PLUGINS"
BUILTIN_DIST = "fc4dfs-bench"


class PluginError(RuntimeError):
    """A plugin could not be loaded or registered (raised in strict mode, or for collisions)."""


class UnknownComponentError(LookupError):
    """A name that no registered component has."""

    def __init__(self, kind: str, name: str, available: list[str]) -> None:
        close = difflib.get_close_matches(name, available, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        avail = ", ".join(sorted(available)) or "none registered"
        super().__init__(f"unknown {kind} {name!r}.{hint} Available: {avail}")
        self.kind, self.name, self.available = kind, name, available


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin distribution entry."""

    entry_point: str
    distribution: str
    version: str
    api_version: str | None = None
    error: str | None = None
    components: list[str] = field(default_factory=list)

    @property
    def provider(self) -> str:
        return "built-in" if self.distribution == BUILTIN_DIST else f"{self.distribution}=={self.version}"

    @property
    def ok(self) -> bool:
        return self.error is None


class Registry:
    """Named components by kind, plus the record of every plugin that was tried."""

    def __init__(self) -> None:
        self._specs: dict[str, dict[str, ComponentSpec]] = {k: {} for k in KINDS}
        self.plugins: list[PluginInfo] = []
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)

    # -- registration ----------------------------------------------------------------------
    def add(self, spec: ComponentSpec) -> None:
        """Add one spec; a second claim on a name is an error naming both providers."""
        table = self._specs[spec.kind]
        if spec.name in table:
            other = table[spec.name]
            raise PluginError(f"{spec.kind} name {spec.name!r} is claimed twice: by {other.provider} "
                              f"({other.target}) and by {spec.provider} ({spec.target})")
        table[spec.name] = spec

    def register_plugin(self, plugin: Any, distribution: str, version: str = "0",
                        entry_point: str | None = None, strict: bool = False) -> PluginInfo:
        """Register a plugin object/module: check its API version, collect its specs.

        Failures are recorded on the returned :class:`PluginInfo` (raised when ``strict``).
        Specs of a failing plugin are not added, so a half-registered plugin never appears.
        """
        info = PluginInfo(entry_point or getattr(plugin, "__name__", repr(plugin)), distribution, version)
        self.plugins.append(info)
        try:
            declared = getattr(plugin, "fc4dfs_api_version", None)
            info.api_version = declared
            if declared is None:
                raise PluginError(f"plugin declares no fc4dfs_api_version; this release needs "
                                  f"{_needs()}")
            if not hookspecs.api_compatible(declared):
                raise PluginError(f"plugin targets plugin API {declared}, this release needs {_needs()}")
            name = f"{distribution}:{info.entry_point}"
            self._pm.register(plugin, name=name)
            try:
                specs = self._collect(plugin, info.provider)
            except Exception:
                self._pm.unregister(name=name)
                raise
            added: list[ComponentSpec] = []
            try:
                for spec in specs:
                    self.add(spec)
                    added.append(spec)
            except Exception:
                for spec in added:
                    self._specs[spec.kind].pop(spec.name, None)
                self._pm.unregister(name=name)
                raise
            info.components = [f"{s.kind}:{s.name}" for s in specs]
        except Exception as e:  # noqa: BLE001 - any plugin failure is isolated
            info.error = f"{type(e).__name__}: {e}"
            if strict:
                raise PluginError(f"plugin {info.entry_point} from {info.provider} failed: {info.error}") from e
        return info

    def _collect(self, plugin: Any, provider: str) -> list[ComponentSpec]:
        specs: list[ComponentSpec] = []
        for kind, hook_name in hookspecs.KIND_HOOKS.items():
            fn = getattr(plugin, hook_name, None)
            if fn is None:
                continue
            for spec in fn() or []:
                if not isinstance(spec, ComponentSpec):
                    raise PluginError(f"{hook_name} returned {type(spec).__name__}, not ComponentSpec")
                if spec.kind != kind:
                    raise PluginError(f"{hook_name} returned a {spec.kind} spec {spec.name!r}")
                specs.append(spec.with_provider(provider))
        return specs

    # -- lookup ----------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self._specs[kind])

    def specs(self, kind: str) -> list[ComponentSpec]:
        return [self._specs[kind][n] for n in self.names(kind)]

    def get(self, kind: str, name: str) -> ComponentSpec:
        try:
            return self._specs[kind][name]
        except KeyError:
            raise UnknownComponentError(kind, name, self.names(kind)) from None

    def load(self, kind: str, name: str) -> Any:
        """The component's class (or a dataset's factory)."""
        return self.get(kind, name).load()

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if not p.ok]


def _needs() -> str:
    major, minor = hookspecs.PLUGIN_API_VERSION.split(".")
    return f"fc4dfs_api_version {major}.0 to {major}.{minor}"


def strict_from_env() -> bool:
    return os.environ.get(STRICT_ENV, "").lower() in ("1", "true", "yes")


def _entry_points() -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def discover(strict: bool | None = None, extra: Iterable[tuple[Any, str]] = ()) -> Registry:
    """Build a registry from every ``fc4dfs`` entry point (built-ins included) plus ``extra``.

    ``extra`` holds ``(plugin, distribution name)`` pairs registered after the entry points —
    how tests and notebooks add components without packaging them.
    """
    strict = strict_from_env() if strict is None else strict
    reg = Registry()
    seen_builtin = False
    for ep in sorted(_entry_points(), key=lambda e: (e.dist.name if e.dist else "", e.name)):
        dist = ep.dist.name if ep.dist else "unknown"
        version = ep.dist.version if ep.dist else "0"
        if ep.value == "fc4dfs.plugins.builtin":
            if seen_builtin:
                continue
            seen_builtin = True
        try:
            plugin: ModuleType | Any = ep.load()
        except Exception as e:  # noqa: BLE001
            info = PluginInfo(ep.name, dist, version, error=f"{type(e).__name__}: {e}")
            reg.plugins.append(info)
            if strict:
                raise PluginError(f"plugin {ep.name} from {info.provider} failed to import: {info.error}") from e
            continue
        reg.register_plugin(plugin, dist, version, entry_point=ep.name, strict=strict)
    if not seen_builtin:  # running from a source tree without installed metadata
        from fc4dfs.plugins import builtin

        reg.register_plugin(builtin, BUILTIN_DIST, _own_version(), entry_point="builtin", strict=True)
    for module in filter(None, (m.strip() for m in os.environ.get(MODULES_ENV, "").split(","))):
        try:
            plugin = importlib.import_module(module)
        except Exception as e:  # noqa: BLE001
            info = PluginInfo(module, f"{MODULES_ENV}:{module}", "0", error=f"{type(e).__name__}: {e}")
            reg.plugins.append(info)
            if strict:
                raise PluginError(f"plugin module {module} (from ${MODULES_ENV}) failed to import: {info.error}") from e
            continue
        reg.register_plugin(plugin, f"{MODULES_ENV}:{module}", "0", entry_point=module, strict=strict)
    for plugin, dist in extra:
        reg.register_plugin(plugin, dist, "0", strict=strict)
    return reg


def _own_version() -> str:
    try:
        return metadata.version(BUILTIN_DIST)
    except metadata.PackageNotFoundError:
        return "0+source"


_REGISTRY: Registry | None = None


def registry(strict: bool | None = None) -> Registry:
    """The process-wide registry (discovered once)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = discover(strict=strict)
    return _REGISTRY


def set_registry(reg: Registry | None) -> None:
    """Replace (or with None, reset) the process-wide registry."""
    global _REGISTRY
    _REGISTRY = reg
