#!/usr/bin/env bash
# make setup: a bare machine -> .venv (pinned ROS 2 Jazzy wheels, torch, ...) + colcon build into install/.
# Idempotent: a second run checks stamps and rebuilds incrementally (seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
REQ="$ROOT/scripts/requirements.txt"
PY=${PYTHON:-python3}

die() { echo "make setup: $*" >&2; exit 1; }

# --- prerequisites, each with one clear sentence -------------------------------------------
command -v "$PY" >/dev/null 2>&1 || die "no '$PY' found: install Python 3.11 (3.10-3.13 work; 3.11 is what the pins are tested with), e.g. 'apt install python3.11 python3.11-venv'."
"$PY" - <<'PYCHECK' || die "$("$PY" -c 'import sys;print("Python %d.%d found"%sys.version_info[:2])' 2>/dev/null) but the ROS 2 Jazzy wheels need Python 3.10-3.13: install Python 3.11 and run 'make setup PYTHON=python3.11'."
import sys
sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 13) else 1)
PYCHECK
"$PY" -c "import venv, ensurepip" 2>/dev/null || die "Python's venv module is missing: install it, e.g. 'apt install python3-venv'."
for tool in cmake make gcc g++; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is missing: the message build needs a C/C++ toolchain and CMake, e.g. 'apt install build-essential cmake'."
done
"$PY" -c "import sysconfig,os,sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()['include'],'Python.h')) else 1)" \
  || die "Python headers (Python.h) are missing: install them, e.g. 'apt install python3-dev'."

# --- virtual environment with pinned packages --------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  echo "make setup: creating $VENV"
  "$PY" -m venv "$VENV"
fi
REQ_HASH=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$REQ_HASH" ]; then
  echo "make setup: installing pinned packages (first run: a few minutes)"
  _ROS_WHEELS_BOOTSTRAP_COMPLETE=1 "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip 2>/dev/null
  # (this machine's pip config may list local index folders that do not exist: drop those warnings)
  _ROS_WHEELS_BOOTSTRAP_COMPLETE=1 "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ" \
    2> >(grep -v "^WARNING: Location 'file://" >&2)
  rm -f "$VENV/.cmake-fixed"
  echo "$REQ_HASH" > "$VENV/.requirements.sha256"
fi

# --- pitfall 1: the wheels' CMake files name the build machine's Python ---------------------
if [ ! -f "$VENV/.cmake-fixed" ]; then
  _ROS_WHEELS_BOOTSTRAP_COMPLETE=1 "$VENV/bin/python" "$ROOT/scripts/fix_wheel_cmake.py" "$VENV"
  touch "$VENV/.cmake-fixed"
fi

# --- build the package (messages + Python) into install/ ----------------------------------
# CMake refuses to export include paths inside the source tree, and .venv (with NumPy's headers)
# lives there: hand CMake NumPy's include dir through a link outside the tree.
NUMPY_INC=$(_ROS_WHEELS_BOOTSTRAP_COMPLETE=1 "$VENV/bin/python" -c "import numpy; print(numpy.get_include())")
LINK_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/sim2sg_ros/$(echo -n "$ROOT" | sha256sum | cut -c1-12)"
mkdir -p "$LINK_DIR" && ln -sfn "$NUMPY_INC" "$LINK_DIR/numpy-include"
mkdir -p "$ROOT/log"
# shellcheck source=/dev/null
source "$ROOT/scripts/env.sh" --no-install-space
colcon --log-base "$ROOT/log" build --base-paths "$ROOT" --build-base "$ROOT/build" --install-base "$ROOT/install" \
  --symlink-install --event-handlers console_cohesion- summary- status- \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DPython3_NumPy_INCLUDE_DIR="$LINK_DIR/numpy-include" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release \
  > "$ROOT/log/colcon-last.txt" 2>&1 || { tail -40 "$ROOT/log/colcon-last.txt" >&2; die "colcon build failed (full log: log/colcon-last.txt)."; }
# Development path: links to the source packages only (scripts/env.sh puts it first on PYTHONPATH).
mkdir -p "$ROOT/build/src-python"
ln -sfn "$ROOT/sim2sg_core" "$ROOT/build/src-python/sim2sg_core"
ln -sfn "$ROOT/sim2sg_ros" "$ROOT/build/src-python/sim2sg_ros"
echo "make setup: ready (source scripts/env.sh to enter the environment)"
