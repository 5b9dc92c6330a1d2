"""pip install . : the ROS-free library sim2sg_core (and the ROS layer's pure-Python modules).

The metadata (name, version, dependencies, entry point) is in pyproject.toml; the version itself is
`__version__` in sim2sg_core/__init__.py. This file only adds what pyproject.toml cannot state: the
config/ and launch/ trees as data files. The ROS 2 build (messages, nodes, launch files) is
CMakeLists.txt via colcon and does not use this file.
"""

from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent


def data_files():
    """config/ and launch/ go to <prefix>/share/sim2sg_ros/ as in a ROS install space."""
    out = {}
    for top in ("config", "launch"):
        for f in sorted((HERE / top).rglob("*")):
            if f.is_file():
                dest = str(Path("share/sim2sg_ros") / f.parent.relative_to(HERE))
                out.setdefault(dest, []).append(str(f.relative_to(HERE)))
    return sorted(out.items())


setup(data_files=data_files())
