"""Shared fixtures: an isolated ROS_DOMAIN_ID per test, so parallel runs never cross."""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_LOCK_DIR = Path(tempfile.gettempdir()) / "sim2sg_ros_domain_ids"
# Fast DDS maps a domain id to UDP ports 7400 + 250 * id + ...: ids up to 232 are valid.
_DOMAIN_IDS = range(1, 200)


@contextlib.contextmanager
def hold_domain_id():
    """A ROS domain id held exclusively (flock) for the block's lifetime, across processes."""
    _LOCK_DIR.mkdir(exist_ok=True)
    ids = list(_DOMAIN_IDS)
    random.Random(os.getpid() ^ id(ids)).shuffle(ids)
    for domain_id in ids:
        f = open(_LOCK_DIR / f"{domain_id}.lock", "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        try:
            yield domain_id
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
            f.close()
        return
    pytest.fail("no free ROS domain id: too many concurrent ROS tests")


@pytest.fixture
def ros_domain_id():
    """This test's own ROS domain id, so parallel runs never cross."""
    with hold_domain_id() as domain_id:
        yield domain_id


@pytest.fixture
def another_ros_domain_id():
    """A second exclusive domain id, for tests that check isolation."""
    with hold_domain_id() as domain_id:
        yield domain_id


@pytest.fixture
def ros_env(ros_domain_id):
    """Environment for child processes: this shell's ROS setup on the test's own domain, localhost only."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(ros_domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def load_test_module(path: Path):
    """Import a helper module of the test tree by file path (tests are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def graph_factory():
    """test/ros/graph_factory.py: deterministic SceneGraphs of any size."""
    return load_test_module(REPO / "test" / "ros" / "graph_factory.py")


@pytest.fixture(scope="session")
def torchrun_support():
    """test/torchrun_support.py (the torchrun executable, a write-logging environment); skips without torchrun."""
    module = load_test_module(REPO / "test" / "torchrun_support.py")
    if module.TORCHRUN is None:
        pytest.skip("torchrun is not installed beside this python")
    return module
