"""The build products: the colcon install space and the pip wheel hold what users import and run."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "install" / "sim2sg_ros"
PYVER = f"python{sys.version_info.major}.{sys.version_info.minor}"


@pytest.mark.skipif(not INSTALL.is_dir(), reason="no colcon install space: run `make setup` first")
def test_install_space_alone_provides_messages_nodes_and_core(tmp_path):
    """With ONLY the install space on PYTHONPATH (not the source tree), as after `source install/setup.bash`."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SIM2SG_CONFIG_DIR")}
    env["PYTHONPATH"] = str(INSTALL / "lib" / PYVER / "site-packages")
    code = (
        "import sim2sg_ros, sim2sg_core, sim2sg_ros.conversions, sim2sg_ros.graph_echo\n"
        "from sim2sg_ros.msg import SceneGraph, SceneObject, Relationship\n"
        "from sim2sg_core.paths import config_dir\n"
        "print(sim2sg_ros.__file__); print(sim2sg_core.__file__); print(config_dir())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    ros_init, core_init, cfg = out.stdout.split()
    assert ros_init.startswith(str(INSTALL)) and core_init.startswith(str(INSTALL))
    assert Path(cfg).resolve() == (INSTALL / "share" / "sim2sg_ros" / "config").resolve()


def _core_version():
    import sim2sg_core

    return sim2sg_core.__version__


@pytest.mark.skipif(not INSTALL.is_dir(), reason="no colcon install space: run `make setup` first")
def test_install_space_metadata_carries_the_one_version():
    """colcon/ament stamp the Python packages with package.xml's version: it must be sim2sg_core's."""
    site = INSTALL / "lib" / PYVER / "site-packages"
    pyver = f"py{sys.version_info.major}.{sys.version_info.minor}"
    for pkg in ("sim2sg_core", "sim2sg_ros"):
        assert (site / f"{pkg}-{_core_version()}-{pyver}.egg-info").exists(), sorted(
            p.name for p in site.glob("*.egg-info")
        )


@pytest.mark.skipif(not INSTALL.is_dir(), reason="no colcon install space: run `make setup` first")
def test_install_space_layout_for_ros2_run_and_launch():
    assert (INSTALL / "share" / "ament_index" / "resource_index" / "packages" / "sim2sg_ros").exists()
    for node in ("perception_node", "adaptation_node", "sim_camera_node"):
        exe = INSTALL / "lib" / "sim2sg_ros" / node
        assert exe.exists() and os.access(exe, os.X_OK), exe
    assert (INSTALL / "share" / "sim2sg_ros" / "launch" / "perception.launch.py").exists()
    assert (INSTALL / "share" / "sim2sg_ros" / "config" / "perception.yaml").exists()
    for m in ("SceneGraph", "SceneObject", "Relationship"):
        assert (INSTALL / "share" / "sim2sg_ros" / "msg" / f"{m}.msg").exists()
    assert (INSTALL / "share" / "sim2sg_ros" / "package.xml").exists()


def test_pip_wheel_carries_the_library_and_its_config(tmp_path):
    """`pip install .` path: the wheel built from setup.py holds sim2sg_core, the ROS layer and config/."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("sim2sg-*.whl"))
    assert wheel.name.startswith(f"sim2sg-{_core_version()}-"), f"{wheel.name}: not sim2sg_core.__version__"
    names = zipfile.ZipFile(wheel).namelist()
    assert "sim2sg_core/scene_graph.py" in names and "sim2sg_ros/conversions.py" in names
    assert any(n.endswith("data/share/sim2sg_ros/config/sim/drive.yaml") for n in names), (
        "config/sim/drive.yaml missing from the wheel"
    )
    assert not any("/msg/_scene_graph" in n for n in names), "generated messages must come from the ROS build"
