"""Plugin failures through pluggy: unknown hooks, missing target modules, collisions, reported on every command."""
from __future__ import annotations

import textwrap
import types

import pytest

from fc4dfs.benchmark.cli import main
from fc4dfs.plugins import ComponentSpec, PluginError, hookimpl
from fc4dfs.plugins import manager
from fc4dfs.plugins.hookspecs import PLUGIN_API_VERSION

GEN = "fc4dfs_nn_baseline.generator:NNRetrievalGenerator"
WRITE_PLUGIN = "fc4dfs_test_components"


def _module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.fc4dfs_api_version = PLUGIN_API_VERSION
    for key, value in attrs.items():
        setattr(mod, key, value)
    return mod


def _gens(*names: str, target: str = GEN):
    def fc4dfs_generators():
        return [ComponentSpec("generator", n, target, "x") for n in names]

    return fc4dfs_generators


@pytest.mark.parametrize("marked", [True, False], ids=["hookimpl", "unmarked"])
def test_misspelt_hook_fails_the_plugin_with_the_closest_hook(marked):
    typo = _gens("typo_gen")
    typo.__name__ = "fc4dfs_generator"
    plugin = _module("typo_plugin", fc4dfs_generator=hookimpl(typo) if marked else typo,
                     fc4dfs_decoders=lambda: [])
    reg = manager.discover(strict=False, extra=[(plugin, "typo-dist")])
    info = [p for p in reg.plugins if p.distribution == "typo-dist"][0]
    assert not info.ok and info.components == []
    assert "unknown hook 'fc4dfs_generator'" in info.error and "did you mean 'fc4dfs_generators'" in info.error
    assert "typo_gen" not in reg.names("generator")
    with pytest.raises(PluginError) as e:
        manager.discover(strict=True, extra=[(plugin, "typo-dist")])
    msg = str(e.value)
    assert "typo-dist" in msg and "fc4dfs_generator'" in msg and "\n" not in msg


def test_a_failed_plugin_leaves_the_manager_valid_for_the_next():
    bad = _module("bad_hooks", fc4dfs_protocol=hookimpl(lambda: []))
    good = _module("good_hooks", fc4dfs_generators=hookimpl(_gens("g_after_bad")))
    reg = manager.discover(strict=False, extra=[(bad, "bad-dist"), (good, "good-dist")])
    assert [p.ok for p in reg.plugins if p.distribution in ("bad-dist", "good-dist")] == [False, True]
    assert reg.get("generator", "g_after_bad").provider == "good-dist==0"


def test_each_component_is_attributed_to_the_plugin_that_returned_it():
    one = _module("one", fc4dfs_generators=hookimpl(_gens("g_one_a", "g_one_b")))
    two = _module("two", fc4dfs_generators=hookimpl(_gens("g_two")))
    reg = manager.discover(strict=True, extra=[(one, "one-dist"), (two, "two-dist")])
    assert [reg.get("generator", n).provider for n in ("g_one_a", "g_one_b", "g_two")] == \
        ["one-dist==0", "one-dist==0", "two-dist==0"]
    infos = {p.distribution: p.components for p in reg.plugins}
    assert infos["one-dist"] == ["generator:g_one_a", "generator:g_one_b"] and infos["two-dist"] == ["generator:g_two"]


def test_spec_with_a_missing_target_module_fails_its_plugin_at_load_time():
    plugin = _module("lazy_plugin", fc4dfs_generators=hookimpl(
        _gens("lazy_ok", "lazy_broken", target="nonexistent_module_xyz:Gen")))
    reg = manager.discover(strict=False, extra=[(plugin, "lazy-dist")])
    info = [p for p in reg.plugins if p.distribution == "lazy-dist"][0]
    assert not info.ok and "'lazy_ok'" in info.error and "nonexistent_module_xyz" in info.error
    assert "lazy_ok" not in reg.names("generator")
    with pytest.raises(PluginError, match="nonexistent_module_xyz"):
        manager.discover(strict=True, extra=[(plugin, "lazy-dist")])


def test_loading_a_target_that_cannot_be_imported_is_one_line_naming_spec_and_module():
    spec = ComponentSpec("generator", "ghost", "fc4dfs.plugins:NoSuchClass", "x", provider="ghost-dist==1")
    with pytest.raises(PluginError) as e:
        spec.load()
    assert "'ghost'" in str(e.value) and "fc4dfs.plugins:NoSuchClass" in str(e.value) and "\n" not in str(e.value)


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path with plugin modules; a fresh process-wide registry and failure report."""
    (tmp_path / "boom_plugin_t.py").write_text('raise RuntimeError("boom at import")\n')
    (tmp_path / "collide_plugin_t.py").write_text(textwrap.dedent(f'''
        from fc4dfs.plugins import ComponentSpec, hookimpl
        fc4dfs_api_version = "{PLUGIN_API_VERSION}"
        @hookimpl
        def fc4dfs_generators():
            return [ComponentSpec("generator", "lstm", "{GEN}", "impostor lstm")]
        '''))
    (tmp_path / "typo_plugin_t.py").write_text(textwrap.dedent(f'''
        fc4dfs_api_version = "{PLUGIN_API_VERSION}"
        def fc4dfs_generator():
            return []
        '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(manager.STRICT_ENV, raising=False)
    monkeypatch.setattr(manager, "_REPORTED", set())
    manager.set_registry(None)
    yield tmp_path
    manager.set_registry(None)


COMMANDS = [
    ["run", "--gen", "mlp", "--dec", "pca", "--protocol", "nosuch"],
    ["check", "--gen", "nosuch"],
    ["list", "protocols"],
    ["leaderboard", "show", "--leaderboard", "nosuch.csv"],
]


@pytest.mark.parametrize("plugin,needle", [
    ("boom_plugin_t", "RuntimeError: boom at import"),
    ("collide_plugin_t", "generator name 'lstm' is claimed twice: by built-in"),
    ("nosuch_module_t", "No module named 'nosuch_module_t'"),
    ("typo_plugin_t", "unknown hook 'fc4dfs_generator' (did you mean 'fc4dfs_generators'?)"),
])
@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_every_command_reports_a_failed_plugin_once(plugin_dir, monkeypatch, capsys, plugin, needle, argv):
    monkeypatch.setenv(manager.MODULES_ENV, plugin)
    monkeypatch.chdir(plugin_dir)
    main(["--no-progress", *argv])
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning: plugin ")]
    assert len(warnings) == 1, err
    assert plugin in warnings[0] and needle in warnings[0], warnings[0]
    assert "Traceback" not in err
    main(["--no-progress", *argv])
    assert "warning: plugin" not in capsys.readouterr().err, "reported once per process"


@pytest.mark.parametrize("plugin,needle", [
    ("boom_plugin_t", "boom at import"),
    ("collide_plugin_t", f"by built-in (fc4dfs.zoo.generators.lstm:LSTMGenerator) and by "
                         f"FC4DFS_PLUGINS:collide_plugin_t==0 ({GEN})"),
    ("typo_plugin_t", "unknown hook 'fc4dfs_generator' (did you mean 'fc4dfs_generators'?)"),
])
def test_strict_turns_a_plugin_failure_into_a_one_line_error(plugin_dir, monkeypatch, capsys, plugin, needle):
    monkeypatch.setenv(manager.MODULES_ENV, plugin)
    assert main(["--strict", "list", "plugins"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fc4dfs-bench: error: plugin ") and "\n" not in err, err
    assert plugin in err and needle in err, err
