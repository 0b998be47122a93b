"""The one user-error boundary (``cli.main``), the CLI grammar and the destination checks."""
from __future__ import annotations

import argparse
import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fc4dfs.benchmark import cli
from fc4dfs.benchmark.errors import UserError, one_line, writable_dir, writable_file


def _main(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as e:
        return int(e.code)


# ------------------------------------------------------------------------------- messages
@pytest.mark.parametrize("message", ["--seeds expects integers, got '0,x'", 'got "hidden"', "'quoted' start"])
def test_one_line_keeps_quotes(message: str):
    assert one_line(UserError(message)) == message


def test_one_line_unquotes_keyerror_and_folds_line_breaks():
    assert one_line(KeyError("no such key")) == "no such key"
    assert one_line(UserError("bad pickle\r\nin file.pkl\rline")) == "bad pickle; in file.pkl; line"


def test_one_line_of_an_oserror_names_the_path():
    e = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/some/where/lb.csv")
    assert one_line(e) == f"/some/where/lb.csv: {os.strerror(errno.ENOSPC)}"


# ------------------------------------------------------------------------------- the boundary
def _fail_rebuild(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    from fc4dfs.benchmark import publishing

    def rebuild(runs, leaderboard):
        raise exc

    monkeypatch.setattr(publishing, "rebuild", rebuild)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EPERM])
def test_unwritable_destination_is_one_line(code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]):
    lb = tmp_path / "lb.csv"
    _fail_rebuild(monkeypatch, OSError(code, os.strerror(code), str(lb)))
    rc = _main(["leaderboard", "rebuild", "--runs", str(tmp_path), "--leaderboard", str(lb)])
    err = capsys.readouterr().err
    assert rc == 2 and err.splitlines() == [f"fc4dfs-bench: error: {lb}: {os.strerror(code)}"], err


@pytest.mark.parametrize("exc", [ValueError("a bug"), OSError(errno.EIO, "I/O error", "x"), RuntimeError("bug")])
def test_a_bug_keeps_its_traceback(exc: BaseException, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _fail_rebuild(monkeypatch, exc)
    with pytest.raises(type(exc)):
        cli.main(["leaderboard", "rebuild", "--runs", str(tmp_path), "--leaderboard", str(tmp_path / "lb.csv")])


def test_held_leaderboard_lock_names_the_lock_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]):
    """A lock held by another process: one line after the timeout, naming the lock file."""
    import filelock

    from fc4dfs.benchmark import leaderboard, publishing

    lb = tmp_path / "lb.csv"
    monkeypatch.setattr(leaderboard, "FileLock", lambda path, timeout=None: filelock.FileLock(path, timeout=0.2))
    monkeypatch.setattr(publishing, "rebuild", lambda runs, path: leaderboard.append_rows(path, [{"a": 1}]))
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl,sys,time; f=open(sys.argv[1],'a'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)",
                               f"{lb}.lock"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        rc = _main(["leaderboard", "rebuild", "--runs", str(tmp_path), "--leaderboard", str(lb)])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert rc == 2 and len(err.splitlines()) == 1 and f"{lb}.lock" in err, err
    assert not lb.exists()


# ------------------------------------------------------------------------------- destinations
def test_writable_dir_and_file_refuse_wrong_kinds(tmp_path: Path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="--out .*f: exists and is not a folder"):
        writable_dir(tmp_path / "f", "--out")
    with pytest.raises(UserError, match="is a file, not a folder"):
        writable_dir(tmp_path / "f" / "sub", "--out")
    with pytest.raises(UserError, match="--leaderboard .*: is a folder"):
        writable_file(tmp_path, "--leaderboard")
    assert writable_dir(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # probing creates nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr")
def test_immutable_out_and_leaderboard_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    ro, lb = tmp_path / "ro", tmp_path / "lb.csv"
    ro.mkdir()
    lb.write_text("row_id\n")
    if subprocess.run(["chattr", "+i", str(ro), str(lb)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i not permitted here")
    try:
        assert _main(["run", "--gen", "mlp", "--dec", "pca", "--out", str(ro), "--leaderboard",
                      str(tmp_path / "x.csv")]) == 2
        assert f"--out {ro}" in capsys.readouterr().err
        assert _main(["run", "--gen", "mlp", "--dec", "pca", "--out", str(tmp_path / "runs"), "--leaderboard",
                      str(lb)]) == 2
        assert f"--leaderboard {lb}" in capsys.readouterr().err
    finally:
        subprocess.run(["chattr", "-i", str(ro), str(lb)], check=True)
    assert lb.read_text() == "row_id\n" and not (tmp_path / "runs").exists()


# ------------------------------------------------------------------------------- grammar
@pytest.mark.parametrize("argv", [["--no-progress", "list", "plugins"], ["list", "plugins", "--no-progress"]])
def test_global_flags_anywhere(argv: list[str], monkeypatch: pytest.MonkeyPatch):
    parser, _ = cli.build_parser()
    assert parser.parse_args(argv).no_progress is True
    assert parser.parse_args(["--strict", *argv]).strict is True
    assert parser.parse_args([*argv, "--strict"]).strict is True
    assert parser.parse_args(argv[-2:] if argv[0] == "--no-progress" else argv[:2]).no_progress is False
    from fc4dfs.benchmark.commands import list_cmd

    seen: list[bool] = []
    real_run = list_cmd.run
    monkeypatch.setattr(list_cmd, "run", lambda args: seen.append(args.progress) or real_run(args))
    monkeypatch.setenv("FC4DFS_PROGRESS", "1")
    assert cli.main(argv) == 0
    assert os.environ["FC4DFS_PROGRESS"] == "1"  # passed down, not through the environment
    assert cli.main([a for a in argv if a != "--no-progress"]) == 0
    monkeypatch.setenv("FC4DFS_PROGRESS", "0")  # the variable is the flag's default
    assert cli.main([a for a in argv if a != "--no-progress"]) == 0
    assert seen == [False, True, False]


def test_option_spellings_and_deprecated_aliases():
    parser, _ = cli.build_parser()
    a = parser.parse_args(["dataset", "info", "synthetic", "-o", "a=1", "--option", "b=2", "--dataset-opt", "c=3"])
    assert a.dataset_opt == ["a=1", "b=2", "c=3"]
    a = parser.parse_args(["check", "--dec", "pca", "--dec-opt", "n_components=4"])
    assert a.dec_opt == ["n_components=4"]
    for cmd in (["run"], ["generate", "--label", "x", "--out", "o"]):
        a = parser.parse_args([*cmd, "--gen-opt", "a=1", "--dec-opt", "b=2", "--dataset-opt", "c=3"])
        assert (a.gen_opt, a.dec_opt, a.dataset_opt) == (["a=1"], ["b=2"], ["c=3"])


def test_every_help_line_states_its_default():
    parser, _ = cli.build_parser()
    missing = []
    for p in cli._walk(parser):
        formatter = p._get_formatter()
        for action in p._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction) or action.required:
                continue
            text = formatter._get_help_string(action)
            if "default" not in text:
                missing.append(f"{p.prog} {'/'.join(action.option_strings)}: {text!r}")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("argv, named", [
    (["run", "--generatr", "mlp"], "did you mean --gen? (see fc4dfs-bench run --help)"),
    (["list", "plugins", "--strcit"], "did you mean --strict?"),
    (["dataset", "info", "synthetic", "--optin", "a=1"], "did you mean --option? (see fc4dfs-bench dataset info"),
    # no prefix abbreviations: --seed is not read as reproduce's --seeds (and then overridden)
    (["reproduce", "--seed", "5", "--seeds", "0,1"], "unrecognized arguments: --seed 5; did you mean --seeds?"),
])
def test_unknown_flag_is_refused_naming_the_closest(argv: list[str], named: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]):
    assert cli.main([*argv, "--out", str(tmp_path / "runs")] if argv[0] == "reproduce" else argv) == 2
    err = capsys.readouterr().err
    assert named in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def test_seed_range_is_stated(capsys: pytest.CaptureFixture[str]):
    from fc4dfs.benchmark.commands.flags import SEED_MAX, seed_type

    assert seed_type("0") == 0 and seed_type(str(SEED_MAX)) == SEED_MAX
    with pytest.raises(argparse.ArgumentTypeError, match=f"0..{SEED_MAX}"):
        seed_type(str(SEED_MAX + 1))


def test_first_identity_is_the_same_in_generate_and_dataset_show():
    """Both default to the first test identity of the generator split (a face no generator trained on)."""
    from fc4dfs.benchmark.commands import dataset as dataset_cmd
    from fc4dfs.benchmark.commands import generate as generate_cmd

    from fc4dfs.benchmark.runner import load_dataset

    ds = load_dataset("synthetic", {"resolution": "small", "identities": 4, "expressions": 3})
    shown = dataset_cmd._pick_sequence(ds, None, None, None).identity
    args = argparse.Namespace(from_neutral=None, identity=None)
    generated, _, _, _ = generate_cmd._choose_neutral(args, ds, "synthetic")
    train, test = ds.generator_split()
    assert shown == generated == test[0] and shown not in train


def test_the_cli_bounds_onednn_s_primitive_cache_unless_set(monkeypatch, capsys):
    import os

    from fc4dfs.benchmark import cli

    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    assert cli.main(["list", "metrics"]) == 0
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(cli.ONEDNN_PRIMITIVE_CACHE)
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "7")
    assert cli.main(["list", "metrics"]) == 0
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "7"
