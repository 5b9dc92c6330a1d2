# Source me: `source scripts/env.sh` puts this shell into the sim2sg_ros environment
# (.venv, the colcon install space, ROS library paths) without ROS wheels' double start of Python.
_SIM2SG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
_SIM2SG_VENV="$_SIM2SG_ROOT/.venv"
if [ ! -x "$_SIM2SG_VENV/bin/python" ]; then
  echo "scripts/env.sh: $_SIM2SG_VENV is missing; run 'make setup' first." >&2
  return 1 2>/dev/null || exit 1
fi
export VIRTUAL_ENV="$_SIM2SG_VENV"
case ":$PATH:" in *":$_SIM2SG_VENV/bin:"*) ;; *) export PATH="$_SIM2SG_VENV/bin:$PATH" ;; esac
_SIM2SG_PYVER=$("$_SIM2SG_VENV/bin/python" -c 'import sys;print("%d.%d"%sys.version_info[:2])' 2>/dev/null || _ROS_WHEELS_BOOTSTRAP_COMPLETE=1 "$_SIM2SG_VENV/bin/python" -c 'import sys;print("%d.%d"%sys.version_info[:2])')
_SIM2SG_SITE="$_SIM2SG_VENV/lib/python$_SIM2SG_PYVER/site-packages"
# Library paths the ros-wheels-bootstrapper would otherwise set by re-executing Python (pitfall 2).
_SIM2SG_LD="$_SIM2SG_VENV/lib"
for d in "$_SIM2SG_SITE"/ros_*.libs; do [ -d "$d" ] && _SIM2SG_LD="$_SIM2SG_LD:$d"; done
export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1
export AMENT_PREFIX_PATH="$_SIM2SG_VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$_SIM2SG_VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export ROS_DISTRO=jazzy
export ROS_VERSION=2
export ROS_PYTHON_VERSION=3
_SIM2SG_INSTALL="$_SIM2SG_ROOT/install/sim2sg_ros"
if [ "${1:-}" != "--no-install-space" ] && [ -d "$_SIM2SG_INSTALL" ]; then
  _SIM2SG_LD="$_SIM2SG_INSTALL/lib:$_SIM2SG_LD"
  export AMENT_PREFIX_PATH="$_SIM2SG_INSTALL:$AMENT_PREFIX_PATH"
  export CMAKE_PREFIX_PATH="$_SIM2SG_INSTALL:$CMAKE_PREFIX_PATH"
  # The source packages first (edits and new modules are live), then the install space, whose
  # generated sim2sg_ros.msg the source package finds through pkgutil.extend_path. Only the two
  # packages are linked (build/src-python), not the repository root, whose launch/, config/, msg/
  # folders would otherwise shadow real Python packages such as `launch`.
  export PYTHONPATH="$_SIM2SG_ROOT/build/src-python:$_SIM2SG_INSTALL/lib/python$_SIM2SG_PYVER/site-packages${PYTHONPATH:+:$PYTHONPATH}"
  export PATH="$_SIM2SG_INSTALL/lib/sim2sg_ros:$PATH"
fi
export LD_LIBRARY_PATH="$_SIM2SG_LD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
unset _SIM2SG_PYVER _SIM2SG_SITE _SIM2SG_LD _SIM2SG_INSTALL
