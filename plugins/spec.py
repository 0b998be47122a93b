"""ComponentSpec: what a plugin registers — a name, a lazily imported target and provenance."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass, field, replace
from typing import Any

from fc4dfs.plugins.errors import PluginError

KINDS = ("generator", "decoder", "pipeline", "dataset", "metric", "protocol")


@dataclass(frozen=True)
class ComponentSpec:
    """A registered component.

    ``target`` is ``"package.module:attribute"``: a class for generators, decoders, pipelines,
    metrics and protocols, a factory ``(**options) -> Dataset`` for datasets. The component's version is written
    once, as the class attribute ``version`` (see :attr:`version`).
    """

    kind: str
    name: str
    target: str
    description: str
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

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    @property
    def version(self) -> str | None:
        """The target's ``version`` attribute, or None when it has none (a dataset factory: the data's
        version is ``Dataset.version``).

        While the target's module is not imported yet, a string literal assigned to ``version`` in the
        class body is read from the source without executing it (as setuptools reads ``attr:``
        versions), so listing components imports no model code; otherwise the target is loaded.
        """
        module, _, attr = self.target.partition(":")
        if module not in sys.modules:
            known, declared = _static_version(module, attr)
            if known:
                return declared
        value = getattr(self.load(), "version", None)
        return value if isinstance(value, str) else None

    def with_provider(self, provider: str) -> "ComponentSpec":
        return replace(self, provider=provider)

    def check_target(self) -> None:
        """Raise :class:`PluginError` when the target's module cannot be found (nothing is executed)."""
        try:
            found = importlib.util.find_spec(self.module) is not None
        except Exception:  # noqa: BLE001 - a parent package that is missing or fails to import
            found = False
        if not found:
            raise PluginError(f"{self.kind} {self.name!r} names module {self.module!r} (target {self.target}), "
                              "which is not installed")

    def load(self) -> Any:
        """Import and return the target.

        Raises:
            PluginError: the module cannot be imported or has no such attribute (one line naming both).
        """
        module, _, attr = self.target.partition(":")
        try:
            obj: Any = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as e:
            raise PluginError(f"{self.kind} {self.name!r} from {self.provider or 'unknown provider'} cannot be "
                              f"loaded from {self.target}: {type(e).__name__}: {e}") from e
        return obj


#: a top-level ``class NAME`` or ``def NAME`` line
_DEFINITION = re.compile(r"^(class|def)[ \t]+(\w+)", re.MULTILINE)
#: a line that assigns an attribute of a top-level name (``factory.version = ...``)
_ATTRIBUTE_ASSIGNED = re.compile(r"^(\w+)[ \t]*\.", re.MULTILINE)
#: an indented line that assigns ``version``
_VERSION_LINE = re.compile(r"^[ \t]+version\b[^\n]*\n?", re.MULTILINE)


def _static_version(module: str, attr: str) -> tuple[bool, str | None]:
    """``(True, version)`` when ``module``'s source alone settles the target's version: a string literal
    assigned to ``version`` in the body of top-level class ``attr``, or None for a top-level function
    ``attr`` to which nothing is assigned; ``(False, None)`` when only importing can tell (inherited or
    computed versions).

    Only the class from its ``class`` line to its first ``version`` line is parsed, not the module:
    listing the components reads a few lines per target.
    """
    try:
        found = importlib.util.find_spec(module)
        origin = found.origin if found else None
        if not origin or not origin.endswith(".py"):
            return False, None
        with open(origin, encoding="utf-8") as f:
            source = f.read()
    except Exception:  # noqa: BLE001 - importing reports the problem
        return False, None
    head = next((m for m in _DEFINITION.finditer(source) if m.group(2) == attr), None)
    if head is None:
        return False, None
    if head.group(1) == "def":
        assigned = any(m.group(1) == attr for m in _ATTRIBUTE_ASSIGNED.finditer(source))
        return (False, None) if assigned else (True, None)
    line = _VERSION_LINE.search(source, head.end())
    if line is None:
        return False, None
    try:  # the class up to that line; a line inside a string or a method does not parse, or not as the class's
        node = ast.parse(source[head.start():line.end()]).body[0]
    except (SyntaxError, IndexError):
        return False, None
    for stmt in getattr(node, "body", []):
        value = _assigned(stmt, lambda t: isinstance(t, ast.Name) and t.id == "version")
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return True, value.value
    return False, None


def _assigned(stmt: ast.stmt, is_target: Any) -> ast.expr | None:
    """The value of ``target = value`` / ``target: T = value`` when ``is_target(target)``."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and is_target(stmt.targets[0]):
        return stmt.value
    if isinstance(stmt, ast.AnnAssign) and is_target(stmt.target):
        return stmt.value
    return None
