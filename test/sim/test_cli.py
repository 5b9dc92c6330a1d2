"""The simulator CLI end to end: KITTI folder, rosbag2 bag and preview grid."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from sim2sg_core.data.bags import list_image_topics, read_bag_images
from sim2sg_core.data.kitti import read_kitti
from sim2sg_core.sim import Simulator
from sim2sg_core.sim.__main__ import main


def test_render_kitti_and_rosbag_and_preview(tmp_path, capsys):
    assert (
        main(
            [
                "render",
                "--env",
                "drive",
                "--domain",
                "target",
                "--n",
                "3",
                "--out",
                str(tmp_path / "k"),
                "--format",
                "kitti",
                "--seed",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["written"] == 3
    items = read_kitti(tmp_path / "k")
    sim = Simulator("drive", "target", seed=2)
    assert [len(g.objects) for _, g in items] == [len(sim.sample(i).graph.objects) for i in range(3)]

    assert (
        main(
            [
                "render",
                "--env",
                "drive",
                "--domain",
                "target",
                "--n",
                "3",
                "--out",
                str(tmp_path / "b"),
                "--format",
                "rosbag",
                "--storage",
                "sqlite3",
                "--compressed",
                "--quiet",
            ]
        )
        == 0
    )
    assert list_image_topics(tmp_path / "b") == {"/camera/image_raw/compressed": "sensor_msgs/msg/CompressedImage"}
    assert len(list(read_bag_images(tmp_path / "b", "/camera/image_raw/compressed"))) == 3

    assert main(["preview", "--env", "clevr", "--domain", "target", "--n", "4", "--out", str(tmp_path / "g.png")]) == 0
    grid = cv2.imread(str(tmp_path / "g.png"))
    assert grid.shape == (2 * 240 + 2, 2 * 320 + 2, 3)


def test_cli_errors_and_help(tmp_path, capsys):
    assert main(["render", "--env", "nope", "--n", "1", "--out", str(tmp_path / "x")]) == 2
    assert "available environments" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["render", "--n", "1", "--out", str(tmp_path / "x"), "--format", "png"])
    out = subprocess.run(
        [sys.executable, "-m", "sim2sg_core.sim", "render", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--format {kitti,rosbag}" in out and "--storage {mcap,sqlite3}" in out
