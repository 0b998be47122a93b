"""Plugin discovery and the registry of named components.

Plugins are modules under the entry-point group ``fc4dfs`` (the built-ins included), registered
with a pluggy :class:`pluggy.PluginManager`; their hooks are called through it and validated
against the hookspecs with ``check_pending()``. A plugin that fails to import, declares an
incompatible API version, implements a hook that does not exist, names a target module that is not
installed or breaks while registering is recorded as a :class:`PluginInfo` with an error and the
others keep working; in strict mode (``--strict`` or ``FC4DFS_STRICT_PLUGINS=1``) the failure is
raised instead. :func:`registry` reports each failure once per process on stderr.
"""
from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, Callable, Iterable

import pluggy

from fc4dfs.plugins import hookspecs
from fc4dfs.plugins.errors import PluginError, UnknownComponentError
from fc4dfs.plugins.spec import KINDS, ComponentSpec

ENTRY_POINT_GROUP = "fc4dfs"
STRICT_ENV = "FC4DFS_STRICT_PLUGINS"
#: comma-separated plugin modules to load without packaging them (``mypkg.plugin,other``)
MODULES_ENV = "FC4DFS_PLUGINS"
BUILTIN_DIST = "fc4dfs-bench"
HOOK_PREFIX = f"{hookspecs.PROJECT}_"

__all__ = ["BUILTIN_DIST", "PluginInfo", "Registry", "discover", "registry", "set_registry"]


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager that also takes unmarked ``fc4dfs_*`` functions as hook implementations (as
    pytest does for ``pytest_*``), so that a misspelt hook is caught by ``check_pending()`` with or
    without ``@hookimpl``."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(HOOK_PREFIX) and inspect.isroutine(getattr(plugin, name, None)):
            opts = {"wrapper": False, "hookwrapper": False, "optionalhook": False, "tryfirst": False,
                    "trylast": False, "specname": None}
        return opts


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

    @property
    def failure(self) -> str:
        """One line naming the plugin, its provider and what went wrong."""
        return f"plugin {self.entry_point} from {self.provider} failed to load: {self.error}"


class Registry:
    """Named components by kind, plus the record of every plugin that was tried."""

    def __init__(self) -> None:
        self._specs: dict[str, dict[str, ComponentSpec]] = {k: {} for k in KINDS}
        self.plugins: list[PluginInfo] = []
        self._pm = _PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)

    # -- registration ----------------------------------------------------------------------
    def register_plugin(self, plugin: Any, distribution: str, version: str = "0",
                        entry_point: str | None = None, strict: bool = False) -> PluginInfo:
        """Register a plugin object/module with the plugin manager and collect its specs.

        Checks, in order: the declared API version, the hook names and signatures against the
        hookspecs (``check_pending``), each hook's return value, each spec's target module (found
        without importing it) and name collisions. Failures are recorded on the returned
        :class:`PluginInfo` (raised as :class:`PluginError` when ``strict``); a failing plugin is
        unregistered and none of its specs are added, so a half-registered plugin never appears.
        """
        info = PluginInfo(entry_point or getattr(plugin, "__name__", repr(plugin)), distribution, version)
        self.plugins.append(info)
        try:
            declared = getattr(plugin, "fc4dfs_api_version", None)
            info.api_version = declared
            if declared is None:
                raise PluginError(f"plugin declares no fc4dfs_api_version; this release needs {_needs()}")
            if not hookspecs.api_compatible(declared):
                raise PluginError(f"plugin targets plugin API {declared}, this release needs {_needs()}")
            self._pm.register(plugin, name=f"{distribution}:{info.entry_point}")
            try:
                self._check_hooks(plugin)
                specs = self._collect(plugin, info.provider)
                for spec in specs:
                    spec.check_target()
                    self._check_free(spec, specs)
            except BaseException:
                self._pm.unregister(plugin)
                raise
            for spec in specs:
                self._specs[spec.kind][spec.name] = spec
            info.components = [f"{s.kind}:{s.name}" for s in specs]
        except Exception as e:  # noqa: BLE001 - any plugin failure is isolated
            info.error = _one_line(e)
            if strict:
                raise PluginError(info.failure) from e
        return info

    def _check_hooks(self, plugin: Any) -> None:
        """``check_pending()`` after each registration: earlier plugins passed it, so a failure is this one's."""
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError:
            unknown = sorted(c.name for c in self._pm.get_hookcallers(plugin) or [] if not c.has_spec())
            known = list(hookspecs.KIND_HOOKS.values())
            hints = [f"unknown hook {name!r}" + "".join(f" (did you mean {m!r}?)" for m in
                                                        difflib.get_close_matches(name, known, n=1))
                     for name in unknown]
            raise PluginError(f"{'; '.join(hints)}; the hooks are {', '.join(known)}") from None

    def _collect(self, plugin: Any, provider: str) -> list[ComponentSpec]:
        """This plugin's specs: each hook called through pluggy on this plugin alone."""
        others = [p for p in self._pm.get_plugins() if p is not plugin]
        specs: list[ComponentSpec] = []
        for kind, hook_name in hookspecs.KIND_HOOKS.items():
            for result in self._pm.subset_hook_caller(hook_name, remove_plugins=others)():
                for spec in result:
                    if not isinstance(spec, ComponentSpec):
                        raise PluginError(f"{hook_name} returned {type(spec).__name__}, not ComponentSpec")
                    if spec.kind != kind:
                        raise PluginError(f"{hook_name} returned a {spec.kind} spec {spec.name!r}")
                    specs.append(spec.with_provider(provider))
        return specs

    def _check_free(self, spec: ComponentSpec, batch: list[ComponentSpec]) -> None:
        """A second claim on a name — by another plugin or twice by this one — is an error naming both."""
        other = self._specs[spec.kind].get(spec.name) or next(
            (s for s in batch if s is not spec and s.kind == spec.kind and s.name == spec.name), None)
        if other is not None:
            raise PluginError(f"{spec.kind} name {spec.name!r} is claimed twice: by {other.provider} "
                              f"({other.target}) and by {spec.provider} ({spec.target})")

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


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())


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
        plugin = _import(reg, ep.load, ep.name, dist, version, strict)
        if plugin is not None:
            reg.register_plugin(plugin, dist, version, entry_point=ep.name, strict=strict)
    if not seen_builtin:  # running from a source tree without installed metadata
        from fc4dfs.plugins import builtin

        reg.register_plugin(builtin, BUILTIN_DIST, _own_version(), entry_point="builtin", strict=True)
    for module in filter(None, (m.strip() for m in os.environ.get(MODULES_ENV, "").split(","))):
        dist = f"{MODULES_ENV}:{module}"
        plugin = _import(reg, lambda: importlib.import_module(module), module, dist, "0", strict)
        if plugin is not None:
            reg.register_plugin(plugin, dist, "0", entry_point=module, strict=strict)
    for plugin, dist in extra:
        reg.register_plugin(plugin, dist, "0", strict=strict)
    return reg


def _import(reg: Registry, load: Callable[[], Any], entry_point: str, dist: str, version: str,
            strict: bool) -> ModuleType | Any | None:
    """The plugin object, or None after recording (strict: raising) why it could not be imported."""
    try:
        return load()
    except Exception as e:  # noqa: BLE001 - any plugin failure is isolated
        info = PluginInfo(entry_point, dist, version, error=_one_line(e))
        reg.plugins.append(info)
        if strict:
            raise PluginError(info.failure) from e
        return None


def _own_version() -> str:
    try:
        return metadata.version(BUILTIN_DIST)
    except metadata.PackageNotFoundError:
        return "0+source"


_REGISTRY: Registry | None = None
_REPORTED: set[str] = set()


def registry(strict: bool | None = None) -> Registry:
    """The process-wide registry, discovered once.

    Every plugin failure is reported once per process, as a line ``warning: plugin ... failed to
    load: ...`` on stderr; in strict mode discovery raises :class:`PluginError` instead.
    """
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = discover(strict=strict)
    for p in _REGISTRY.failures:
        if p.failure not in _REPORTED:
            _REPORTED.add(p.failure)
            print(f"warning: {p.failure}", file=sys.stderr)
    return _REGISTRY


def set_registry(reg: Registry | None) -> None:
    """Replace (or with None, reset) the process-wide registry."""
    global _REGISTRY
    _REGISTRY = reg
