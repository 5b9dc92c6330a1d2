"""Pitfall 1 of ROS 2 from wheels: exported CMake files name the wheel builder's Python.

They contain paths like /opt/python/cp311-cp311/include/python3.11 and .../site-packages/numpy/_core/include;
CMake's generate step fails on those non-existent paths. Rewrite them to this interpreter's include dir and the
venv's site-packages, once, after install. Usage: python fix_wheel_cmake.py VENV
"""

import re
import sys
import sysconfig
from pathlib import Path

venv = Path(sys.argv[1]).resolve()
include = sysconfig.get_paths()["include"]
site = sysconfig.get_paths()["purelib"]
py_include = re.compile(r"/opt/python/cp\d+-cp\d+t?/include/python\d+\.\d+t?")
py_site = re.compile(r"/opt/python/cp\d+-cp\d+t?/lib/python\d+\.\d+t?/site-packages")
changed = 0
for f in (venv / "share").rglob("*.cmake"):
    text = f.read_text(errors="surrogateescape")
    new = py_site.sub(site, py_include.sub(include, text))
    if new != text:
        f.write_text(new, errors="surrogateescape")
        changed += 1
print(f"fix_wheel_cmake: rewrote Python paths in {changed} CMake files under {venv / 'share'}")
