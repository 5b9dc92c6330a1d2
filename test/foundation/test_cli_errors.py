"""Every CLI command ends a user error with an ``error:`` line and exit status 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from sim2sg_core.__main__ import main
from sim2sg_core.model import SGModel
from sim2sg_core.sim import Simulator
from sim2sg_core.sim.__main__ import main as sim_main
from sim2sg_core.train.checkpoint import save_checkpoint
from sim2sg_core.train.config import config_from_dict


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """An (untrained) checkpoint, a two-frame MCAP bag of camera images, and a file that is neither."""
    root = tmp_path_factory.mktemp("cli_errors")
    cfg = config_from_dict(
        {
            "model": {
                "encoder_channels": [8, 16, 16, 24, 24],
                "feature_channels": 16,
                "head_channels": 16,
                "input_width": 160,
                "input_height": 64,
                "relation_hidden": 32,
            }
        }
    )
    vocab = Simulator(env="drive", domain="source").vocab
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        root / "model.pt", SGModel.from_config(cfg, vocab), cfg, vocab, (160, 64), cfg.model.mean, cfg.model.std
    )
    assert (
        sim_main(
            [
                "render",
                "--env",
                "drive",
                "--domain",
                "target",
                "--n",
                "2",
                "--out",
                str(root / "bag"),
                "--format",
                "rosbag",
                "--image-size",
                "160x64",
                "--quiet",
            ]
        )
        == 0
    )
    text = root / "notes.txt"
    text.write_text("not a model\n")
    return {"ckpt": str(ckpt), "bag": str(root / "bag"), "text": str(text), "root": root}


def _fails_cleanly(capsys, argv, expect: str, entry=main):
    """The command exits 2 (returned, or argparse's SystemExit) with one ``error:`` sentence containing
    ``expect``; an unexpected exception would propagate and fail the test with its traceback."""
    try:
        rc = entry(argv)
    except SystemExit as e:  # argparse: usage line + "prog: error: ..."
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, (argv, rc, err)
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and expect in lines[0], (argv, err)
    assert "Traceback" not in err


def test_bad_arguments_to_every_command(files, capsys, tmp_path):
    ck, bag, text = files["ckpt"], files["bag"], files["text"]
    out = str(tmp_path / "out.pt")
    cases = [
        (["predict", "--ckpt", ck, text, "--score-threshold", "7"], "outside [0, 1]"),
        (["predict", "--ckpt", text, text], "checkpoint"),
        (["predict", "--ckpt", ck, str(tmp_path / "missing.png")], "cannot read image"),
        (["train", "--out", str(tmp_path / "t"), "--steps", "0"], "must be at least 1"),
        (["train", "--out", str(tmp_path / "t"), "--camera-height", "1.5"], "need --camera-info"),
        (["eval", "--ckpt", str(tmp_path / "nope.pt"), "--data", "drive:target"], "nope.pt"),
        (["eval", "--ckpt", ck, "--data", "drive:target", "--images", "-3"], "must be at least 1"),
        (["export", "--ckpt", text, "--out", str(tmp_path / "m.onnx")], "notes.txt"),
        (["adapt", "--init", ck, "--target", "/does/not/exist", "--out", out], "/does/not/exist does not exist"),
        (["adapt", "--init", ck, "--target", bag, "--topic", "/wrong", "--out", out], "/wrong"),
        (["adapt", "--init", ck, "--target", bag, "--out", out], "--topic"),
        (["adapt", "--init", ck, "--target", "sim:target", "--out", out, "--set", "unknown_key=1"], "--set override"),
        (["adapt", "--init", ck, "--target", "sim:target", "--out", out, "--set", "rounds"], "KEY=VALUE"),
        (["adapt", "--init", text, "--target", "sim:target", "--out", out], "notes.txt"),
        (["bench", "--out", str(tmp_path / "b"), "--target", bag], "--eval-data"),
        (["bench", "--out", str(tmp_path / "b"), "--profile", "nope"], "unknown bench profile"),
    ]
    for argv, expect in cases:
        _fails_cleanly(capsys, argv, expect)
    _fails_cleanly(
        capsys,
        ["render", "--n", "1", "--out", str(tmp_path / "r"), "--camera-height", "1.5"],
        "need --camera-info",
        entry=sim_main,
    )
    _fails_cleanly(capsys, ["render", "--n", "0", "--out", str(tmp_path / "r")], "--n", entry=sim_main)


@pytest.mark.slow
def test_a_wrong_bag_topic_prints_one_line_from_a_real_process(files):
    """The case from the issue, as a user runs it: no traceback on the terminal, the topics that exist."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim2sg_core",
            "adapt",
            "--init",
            files["ckpt"],
            "--target",
            files["bag"],
            "--topic",
            "/wrong",
            "--out",
            str(files["root"] / "a.pt"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith("error: ") and "/camera/image_raw" in run.stderr, run.stderr
