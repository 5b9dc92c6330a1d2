"""One config locator: $SIM2SG_CONFIG_DIR moves every config the package reads, the simulator's included."""

from __future__ import annotations

import pytest

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sim2sg_config_dir_moves_the_simulator_adaptation_and_class_map_configs(tmp_path):
    moved = tmp_path / "config"
    shutil.copytree(REPO / "config", moved)
    shutil.copy(moved / "sim" / "drive.yaml", moved / "sim" / "drive_copy.yaml")
    probe = (
        "import json; from sim2sg_core.sim.domains import available_environments, sim_config_dir; "
        "from sim2sg_core.data.kitti import default_class_map_path; "
        "from sim2sg_core.adapt.config import adapt_config_dir; "
        "print(json.dumps([str(sim_config_dir()), str(default_class_map_path()), str(adapt_config_dir()), "
        "available_environments()]))"
    )
    env = {"SIM2SG_CONFIG_DIR": str(moved), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    sim_dir, class_map, adapt_dir, envs = json.loads(out.stdout)
    assert Path(sim_dir) == moved / "sim" and "drive_copy" in envs
    assert Path(class_map) == moved / "class_maps" / "kitti.yaml"
    assert Path(adapt_dir) == moved / "adapt"
