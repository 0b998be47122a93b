"""Bad user input, swept over every command: exit 2, one line on stderr naming the argument or
file, no traceback, and nothing already on disk (runs, leaderboard, other files) changed."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from fc4dfs.benchmark.cli import main

SMALL = ["--dataset-opt", "resolution=small", "--dataset-opt", "identities=4", "--dataset-opt", "expressions=3"]
RUN = ["run", "--out", "{w}/runs", "--leaderboard", "{w}/lb.csv", "--budget", "smoke"]
GEN = ["generate", "--gen", "mlp", "--dec", "pca", "--budget", "smoke"]

#: (argv with {w} for the work folder, text the one error line must contain)
BAD_INPUTS: list[tuple[list[str], str]] = [
    # run: flags checked at parse time
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--seed", "-1"], "--seed"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--seed", str(2**64)], "--seed"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--seed", "abc"], "--seed"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--seeds", "0,x"], "--seeds"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--seeds", ""], "--seeds"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--seeds", "1,1"], "--seeds"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--seed", "5", "--seeds", "0,1"], "--seed"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--threads", "-1"], "--threads"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--threads", "0"], "--threads"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--device", "bogus"], "--device"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--device", "cuda:x"], "--device"),
    (["run", "--gen", "mlp", "--dec", "pca", "--budget", "huge"], "--budget"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--no-such-flag"], "--no-such-flag"),
    # run: names, options, destinations (before any run folder)
    (["run", "--gen", "mlp", "--dec", "pca", "--out", "{w}/afile", "--leaderboard", "{w}/lb.csv"], "afile"),
    (["run", "--gen", "mlp", "--dec", "pca", "--out", "{w}/runs", "--leaderboard", "{w}/runs"], "--leaderboard"),
    ([*RUN, "--gen", "nosuchgen", "--dec", "pca"], "nosuchgen"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--protocol", "nosuchprotocol"], "nosuchprotocol"),
    ([*RUN, "--gen", "mlp"], "--dec"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--gen-opt", "hidden"], "--gen-opt"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--budget-opt", "epochs"], "--budget-opt"),
    ([*RUN, "--gen", "ddpm", "--dec", "pca", "--gen-opt", "cfg_every=0"], "--gen-opt"),  # the component's own check
    ([*RUN, "--gen", "ddpm", "--dec", "pca", "--gen-opt", "cfg_from=0.6", "--gen-opt", "cfg_to=0.5"], "cfg_to"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--dataset-opt", "identities=2"], "identities"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", "--dataset-opt", "colour=blue"], "colour"),
    # run: protocol options refused after the dataset loads, before training; the new run folder goes
    ([*RUN, "--gen", "mlp", "--dec", "pca", *SMALL, "--protocol-opt", "length=-3"], "length"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", *SMALL, "--protocol-opt", "samples=-1"], "samples"),
    ([*RUN, "--gen", "mlp", "--dec", "pca", *SMALL, "--protocol", "length-ablation",
      "--protocol-opt", "lengths=[1]"], "lengths"),
    ([*RUN, "--dec", "pca", *SMALL, "--protocol", "decoder-cv", "--protocol-opt", "folds=9"], "folds"),
    # generate
    ([*GEN, "--label", "eyebrow", "--out", "{w}/g", "--length", "1000000000"], "--length"),
    ([*GEN, "--label", "eyebrow", "--out", "{w}/g", "--length", "1"], "--length"),
    ([*GEN, "--label", "eyebrow", "--out", "{w}/g", "--fps", "0"], "--fps"),
    ([*GEN, "--label", "eyebrow", "--out", "{w}/g", "--fps", "nan"], "--fps"),
    ([*GEN, "--label", "eyebrow", "--out", "{w}/g", "--basis", "0"], "--basis"),
    ([*GEN, "--label", "eyebrow", "--out", "{w}/g", "--seed", "-5"], "--seed"),
    ([*GEN, "--label", "eyebrow", "--out", "{w}/afile"], "afile"),
    ([*GEN, "--label", "eyebrow", "--out", "{w}/g", "--formats", "xyz"], "--formats"),
    ([*GEN, "--label", "eyebrow", "--out", "{w}/g", "--known-frames", "0-3"], "--known-frames"),
    (["generate", "--label", "eyebrow", "--out", "{w}/g"], "--gen"),
    ([*GEN, "--out", "{w}/g"], "--label"),
    ([*GEN, "--label", "eyebrow", "--out", "{w}/g", "--run", "{w}/norun"], "norun"),
    ([*GEN, "--label", "nosuchlabel", "--out", "{w}/g", *SMALL], "nosuchlabel"),
    ([*GEN, "--label", "eyebrow", "--out", "{w}/g", "--dataset-opt", "identities=2"], "identities"),
    ([*GEN, "--label", "eyebrow", "--out", "{w}/g", "--device", "cuda:99"], "--device"),
    ([*GEN, "--label", "eyebrow", "--out", "{w}/g", *SMALL, "--budget-opt", "epochz=1"], "epochs"),
    ([*GEN, "--label", "eyebrow", "--out", "{w}/g", *SMALL, "--gen-opt", "hiden=8"], "--gen-opt"),
    ([*GEN, "--label", "eyebrow", "--out", "{w}/g", *SMALL, "--dataset-opt", "resolutio=small"], "resolution"),
    # render
    (["render", "{w}/norun"], "norun"),
    (["render", "{w}/corrupt_npz"], "examples.npz"),
    (["render", "{w}/corrupt_json"], "examples.json"),
    (["render", "{w}/bad_shape"], "gt_mesh_0"),
    (["render", "{w}/corrupt_npz", "--max-examples", "0"], "--max-examples"),
    (["render", "{w}/corrupt_npz", "--height", "10"], "--height"),
    (["render", "{w}/corrupt_npz", "--time-budget", "-1"], "--time-budget"),
    # check
    (["check"], "--gen"),
    (["check", "--gen", "nosuchgen"], "nosuchgen"),
    (["check", "--gen", "mlp", "--dec", "pca"], "--dec"),
    (["check", "--dec", "pca", "--gen-opt", "hidden=4"], "--gen-opt"),
    (["check", "--dataset", "synthetic", "--dataset-opt", "colour=blue"], "colour"),
    (["check", "--metric", "nosuchmetric"], "nosuchmetric"),
    # leaderboard
    (["leaderboard", "show", "--leaderboard", "{w}/none.csv"], "none.csv"),
    (["leaderboard", "show", "--leaderboard", "{w}/runs"], "--leaderboard"),
    (["leaderboard", "rebuild", "--runs", "{w}/nodir", "--leaderboard", "{w}/lb.csv"], "--runs"),
    (["leaderboard", "publish", "--leaderboard", "{w}/lb.csv", "--out", "{w}/afile"], "afile"),
    (["leaderboard", "bogus"], "bogus"),
    (["leaderboard"], "ACTION"),
    # dataset
    (["dataset", "info", "nosuchdataset"], "nosuchdataset"),
    (["dataset", "info", "synthetic", "--dataset-opt", "identities=2"], "identities"),
    (["dataset", "info", "synthetic", "-o", "colour=blue"], "colour"),
    (["dataset", "info", "synthetic", "--dataset-opt", "resolution"], "--dataset-opt"),
    (["dataset", "info", "coma", "--coma-root", "{w}/nodir"], "nodir"),
    (["dataset", "show", "synthetic", "--frames", "0"], "--frames"),
    (["dataset", "show", "synthetic", "--out", "{w}/runs"], "--out"),
    (["dataset", "show", "synthetic", *SMALL, "--identity", "nosuchface", "--out", "{w}/show.png"], "nosuchface"),
    # global
    (["--strict", "nosuchcommand"], "nosuchcommand"),
]


def _snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with a hash of its bytes (folders as 'dir')."""
    return {str(p.relative_to(folder)): ("dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a finished-looking run, a leaderboard, a plain file and three broken run folders."""
    from fc4dfs.benchmark.runner import load_dataset

    # built (or repaired, with its own stderr line) here, not inside a swept command
    load_dataset("synthetic", {"resolution": "small", "identities": 4, "expressions": 3})
    w = tmp_path_factory.mktemp("bad-input")
    run = w / "runs" / "e2e_synthetic_mlp_pca_smoke_s0_00000000"
    run.mkdir(parents=True)
    (run / "record.json").write_text(json.dumps({"status": "ok", "rows_flat": []}))
    (w / "lb.csv").write_text("row_id,protocol,dataset,generator,decoder,seed,status\nabc,e2e,synthetic,mlp,pca,0,ok\n")
    (w / "afile").write_text("a file, not a folder\n")
    for name in ("corrupt_npz", "corrupt_json", "bad_shape"):
        (w / name).mkdir()
        (w / name / "examples.json").write_text(json.dumps([{"index": 0, "identity": "a", "label": "b"}]))
    (w / "corrupt_npz" / "examples.npz").write_bytes(b"PK\x03\x04 truncated zip")
    np.savez(w / "corrupt_json" / "examples.npz", faces=np.zeros((1, 3), np.int64))
    (w / "corrupt_json" / "examples.json").write_text("[{")
    np.savez(w / "bad_shape" / "examples.npz", gt_mesh_0=np.zeros((3, 4)))
    return w


def test_sweep_has_forty_distinct_inputs():
    argvs = {tuple(argv) for argv, _ in BAD_INPUTS}
    commands = {next(a for a in argv if not a.startswith("-")) for argv, _ in BAD_INPUTS}
    assert len(argvs) == len(BAD_INPUTS) >= 40, (len(argvs), len(BAD_INPUTS))
    assert {"run", "generate", "render", "check", "leaderboard", "dataset"} <= commands, commands


@pytest.mark.parametrize("argv,names", BAD_INPUTS, ids=[" ".join(a[:6]) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_changes_nothing(argv: list[str], names: str, work: Path,
                                                   capsys: pytest.CaptureFixture[str]):
    argv = [a.replace("{w}", str(work)) for a in argv]
    before = _snapshot(work)
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse refuses at parse time
        rc = e.code
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert rc == 2, (rc, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert lines[0].startswith("fc4dfs-bench: error: "), lines[0]
    assert names in lines[0].replace(str(work), ""), (names, lines[0])
    assert _snapshot(work) == before, "the command changed files on disk"
