"""Plugin discovery, isolation of broken plugins, collisions, API versions, unknown names."""
from __future__ import annotations

import types
from importlib import metadata

import pytest

from fc4dfs.plugins import ComponentSpec, PluginError, UnknownComponentError, hookimpl
from fc4dfs.plugins import manager
from fc4dfs.plugins.hookspecs import PLUGIN_API_VERSION, api_compatible


API = PLUGIN_API_VERSION


def _plugin(name: str, api: str | None = API, gens=(), fail: bool = False) -> types.ModuleType:
    mod = types.ModuleType(name)
    if api is not None:
        mod.fc4dfs_api_version = api

    @hookimpl
    def fc4dfs_generators():
        if fail:
            raise RuntimeError("boom while registering")
        return [ComponentSpec("generator", g, "fc4dfs_nn_baseline.generator:NNRetrievalGenerator", "x") for g in gens]

    mod.fc4dfs_generators = fc4dfs_generators
    return mod


def test_spec_version_is_the_class_attribute_read_without_importing():
    """The class attribute is the only version; ``list`` reads it from the source without importing."""
    import subprocess
    import sys

    from fc4dfs.plugins.spec import KINDS

    code = ("import sys; from fc4dfs.plugins.manager import discover; reg = discover(strict=True); "
            "print([(k, s.name, s.version) for k in %r for s in reg.specs(k)]); "
            "print(sorted(m for m in sys.modules if m.startswith(('fc4dfs.zoo.', 'fc4dfs.benchmark.metrics.', "
            "'fc4dfs.benchmark.protocols.')) and m.count('.') > 3))" % (KINDS,))
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    static, imported = eval(lines[0]), eval(lines[1])  # noqa: S307 - our own repr
    assert imported == [], f"reading versions imported {imported}"
    reg = manager.discover(strict=True)
    for kind, name, version in static:
        target = reg.get(kind, name).load()
        assert version == getattr(target, "version", None), (kind, name, version, getattr(target, "version", None))
    assert {(k, n) for k, n, v in static if v is None} == {("dataset", n) for n in reg.names("dataset")}


def test_spec_version_follows_inheritance_and_runtime_changes(tmp_path, monkeypatch):
    src = tmp_path / "versioned_mod.py"
    src.write_text("class Base:\n    version = '3'\n\n\nclass Child(Base):\n    pass\n\n\n"
                   "class Own(Base):\n    version: str = '4'\n\n\ndef factory():\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    child = ComponentSpec("generator", "child", "versioned_mod:Child", "x")
    own = ComponentSpec("generator", "own", "versioned_mod:Own", "x")
    fac = ComponentSpec("dataset", "fac", "versioned_mod:factory", "x")
    assert own.version == "4" and fac.version is None
    assert child.version == "3"  # inherited: only importing can tell
    import versioned_mod

    monkeypatch.setattr(versioned_mod.Own, "version", "5")
    assert own.version == "5", "once imported, the live class attribute counts"


def test_builtins_register_through_the_entry_point_group():
    reg = manager.discover(strict=True)
    builtin = [p for p in reg.plugins if p.distribution == manager.BUILTIN_DIST]
    assert len(builtin) == 1 and builtin[0].ok and builtin[0].provider == "built-in"
    assert {"mlp", "lstm", "fc_lstm"} <= set(reg.names("generator"))
    assert {"synthetic"} <= set(reg.names("dataset"))
    assert all(s.provider == "built-in" for s in reg.specs("protocol"))


def test_example_external_plugin_is_discovered():
    try:
        metadata.version("fc4dfs-nn-baseline")
    except metadata.PackageNotFoundError:
        pytest.skip("example plugin not installed (pip install -e examples/fc4dfs-nn-baseline)")
    reg = manager.discover(strict=True)
    spec = reg.get("generator", "nn_retrieval")
    assert spec.provider.startswith("fc4dfs-nn-baseline==")
    assert spec.description


def test_broken_plugin_is_isolated_and_reported():
    reg = manager.discover(strict=False, extra=[(_plugin("bad", gens=["x1"], fail=True), "broken-dist"),
                                                (_plugin("good", gens=["x2"]), "good-dist")])
    failed = [p for p in reg.plugins if not p.ok]
    assert len(failed) == 1 and failed[0].distribution == "broken-dist"
    assert "boom while registering" in failed[0].error
    assert "x2" in reg.names("generator") and "x1" not in reg.names("generator")


def test_broken_plugin_fails_in_strict_mode():
    with pytest.raises(PluginError, match="broken-dist"):
        manager.discover(strict=True, extra=[(_plugin("bad", gens=["x1"], fail=True), "broken-dist")])


def test_entry_point_that_fails_to_import_is_isolated(monkeypatch):
    class FakeDist:
        name, version = "ghost-dist", "9.9"

    class FakeEP:
        name, value, dist = "ghost", "no_such_module_anywhere", FakeDist()

        def load(self):
            raise ImportError("No module named 'no_such_module_anywhere'")

    real = list(manager._entry_points())
    monkeypatch.setattr(manager, "_entry_points", lambda: real + [FakeEP()])
    reg = manager.discover(strict=False)
    bad = [p for p in reg.plugins if p.distribution == "ghost-dist"]
    assert bad and bad[0].version == "9.9" and "ImportError" in bad[0].error
    assert "fc_lstm" in reg.names("generator")
    with pytest.raises(PluginError, match="ghost-dist==9.9"):
        manager.discover(strict=True)


def test_name_collision_names_both_providers():
    with pytest.raises(PluginError) as e:
        manager.discover(strict=True, extra=[(_plugin("dup", gens=["fc_lstm"]), "dup-dist")])
    assert "built-in" in str(e.value) and "dup-dist" in str(e.value)
    reg = manager.discover(strict=False, extra=[(_plugin("dup", gens=["fc_lstm", "other"]), "dup-dist")])
    assert reg.get("generator", "fc_lstm").provider == "built-in"
    assert "other" not in reg.names("generator"), "a half-registered plugin must not appear"


@pytest.mark.parametrize("api,ok", [("2.0", True), ("2.9", False), ("3.0", False), ("1.0", False), ("x", False)])
def test_api_versions(api, ok):
    assert api_compatible(api) is ok
    reg = manager.discover(strict=False, extra=[(_plugin("p", api=api, gens=["g_api"]), "api-dist")])
    info = [p for p in reg.plugins if p.distribution == "api-dist"][0]
    assert info.ok is ok
    if not ok:
        assert f"needs fc4dfs_api_version {API[0]}.0 to {API}" in info.error


def test_plugin_without_api_version_is_refused():
    reg = manager.discover(strict=False, extra=[(_plugin("p", api=None, gens=["g"]), "noapi-dist")])
    info = [p for p in reg.plugins if p.distribution == "noapi-dist"][0]
    assert not info.ok and "declares no fc4dfs_api_version" in info.error


def test_unknown_name_lists_available_and_closest():
    reg = manager.discover(strict=True)
    with pytest.raises(UnknownComponentError) as e:
        reg.get("generator", "fc_lstn")
    msg = str(e.value)
    assert "Did you mean 'fc_lstm'" in msg and "mlp" in msg and "\n" not in msg


def test_listing_imports_no_model_code():
    import subprocess
    import sys

    code = ("import sys; from fc4dfs.benchmark.cli import main; main(['list']); "
            "heavy=[m for m in sys.modules if m.startswith(('fc4dfs.zoo.generators.', 'fc4dfs.zoo.decoders.')) "
            "or m.split('.')[0] in ('numpy', 'torch', 'pandas', 'scipy')]; "
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_top_level_help_imports_no_command_module():
    """``--help`` is built from the command table alone; a command line imports its own command's module only."""
    import subprocess
    import sys

    code = ("import sys; from fc4dfs.benchmark.cli import main; main(sys.argv[1:]); "
            "print('LOADED', sorted(m for m in sys.modules if m.startswith('fc4dfs.benchmark.commands.') "
            "or m.split('.')[0] in ('numpy', 'torch', 'pandas')))")
    for argv, loaded in ((["--help"], []), (["--no-progress", "leaderboard", "--help"],
                                             ["fc4dfs.benchmark.commands.leaderboard"])):
        res = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
        assert f"LOADED {loaded}" in res.stdout, (argv, res.stdout[-300:])
