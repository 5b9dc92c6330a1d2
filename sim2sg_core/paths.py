"""Where the package's data files (config/) live, in a source tree, a colcon install or a pip install.

Search order: ``$SIM2SG_CONFIG_DIR``; the source tree (``<repo>/config`` next to this package);
``<prefix>/share/sim2sg_ros/config`` for the prefix this package is installed in (colcon install
space or pip's ``sys.prefix``); the ament index.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Optional

PACKAGE_SHARE = Path("share") / "sim2sg_ros"
#: Marker files of the packages an ament prefix holds (REP 149 resource index).
AMENT_PACKAGES_INDEX = os.path.join("share", "ament_index", "resource_index", "packages")


def _candidates() -> list[Path]:
    here = Path(os.path.abspath(__file__)).parent  # not resolve(): keep the install-space path
    cands: list[Path] = []
    env = os.environ.get("SIM2SG_CONFIG_DIR")
    if env:
        cands.append(Path(env))
    cands.append(here.parent / "config")  # source tree
    # installed: <prefix>/lib/pythonX.Y/site-packages/sim2sg_core -> <prefix>/share/sim2sg_ros/config
    for up in (3, 4):
        if len(here.parents) > up:
            cands.append(here.parents[up] / PACKAGE_SHARE / "config")
    cands.append(Path(sys.prefix) / PACKAGE_SHARE / "config")
    share = ament_share_dir("sim2sg_ros")  # a ROS install where the package is registered in the ament index
    if share is not None:
        cands.append(share / "config")
    return cands


def ament_share_dir(package: str) -> Optional[Path]:
    """``<prefix>/share/<package>`` for the first ``$AMENT_PREFIX_PATH`` prefix whose ament index
    registers ``package`` (what ament_index_python's ``get_package_share_directory`` finds, read here
    directly so the core imports nothing from ROS); None when unset or not registered."""
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix and os.path.isfile(os.path.join(prefix, AMENT_PACKAGES_INDEX, package)):
            return Path(prefix) / "share" / package
    return None


@lru_cache(maxsize=None)
def config_dir() -> Path:
    """The directory holding ``sim/``, ``model/``, ``adapt/``, ``perception.yaml``, ...."""
    cands = _candidates()
    for c in cands:
        if (c / "sim").is_dir():
            return c
    raise FileNotFoundError(
        "cannot find the sim2sg config directory (looked in: "
        + ", ".join(str(c) for c in cands)
        + "); set SIM2SG_CONFIG_DIR to the package's config/ folder"
    )


def config_path(*parts: str) -> Path:
    """Path of a file under the config directory, e.g. ``config_path('sim', 'drive.yaml')``."""
    return config_dir().joinpath(*parts)
