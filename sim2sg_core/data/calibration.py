"""Camera calibration → :class:`sim2sg_core.geometry.Camera`: the one place that reads intrinsics.

Sources:

* a ROS ``camera_calibration`` YAML (``image_width``, ``image_height``, ``camera_matrix.data``),
  as written by the calibration tools and read by ``camera_info_manager``;
* a KITTI calib file (``P2: 12 numbers``; through :mod:`sim2sg_core.data.kitti`), which carries no
  image size, so the caller gives it;
* a ``sensor_msgs/CameraInfo`` message (``.k``, ``.width``, ``.height``) or the dict that
  :func:`sim2sg_core.data.bags.read_camera_info` returns.

A calibration file holds intrinsics only; the mounting pose (``height_m`` above the ground,
downward ``pitch`` in rad) is calibration the caller supplies. Distortion is ignored (rectified
images assumed). The principal point is used as given: the half-pixel difference between the ROS
convention (pixel centres at integers) and the renderer's (pixel ``i`` spans ``[i, i+1)``) is
ignored, as in the KITTI reader/writer.

Every bad input raises :class:`CalibrationError` (a ``ValueError``) with a sentence naming the
file and the field.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import yaml

from sim2sg_core.data.kitti import KittiFormatError, camera_from_calib, read_calib
from sim2sg_core.geometry import Camera

PathLike = Union[str, os.PathLike]

YAML_SUFFIXES = (".yaml", ".yml")
KITTI_SUFFIXES = (".txt",)


class CalibrationError(ValueError):
    """A calibration file or message that cannot be turned into a camera (file and field named)."""


def camera_from_matrix(
    K, width: int, height: int, *, height_m: float, pitch: float = 0.0, where: str = "calibration"
) -> Camera:
    """A camera from a 3×3 intrinsic matrix (any 9-element sequence, row-major) and an image size."""
    try:
        k = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"{where}: camera matrix is not numeric") from None
    if k.size != 9:
        raise CalibrationError(f"{where}: camera matrix needs 9 numbers (3x3), got {k.size}")
    k = k.reshape(3, 3)
    if not np.all(np.isfinite(k)):
        raise CalibrationError(f"{where}: camera matrix holds non-finite values")
    if not np.any(k):
        raise CalibrationError(f"{where}: camera matrix is all zeros (an uncalibrated camera)")
    if abs(k[2, 2]) < 1e-12:
        raise CalibrationError(f"{where}: camera matrix element [2][2] is zero")
    k = k / k[2, 2]
    fx, fy, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
    if fx <= 0 or fy <= 0:
        raise CalibrationError(f"{where}: focal lengths must be positive, got fx={fx:g}, fy={fy:g}")
    try:
        w, h = int(width), int(height)
    except (TypeError, ValueError):
        raise CalibrationError(f"{where}: image size must be integers, got {width!r}x{height!r}") from None
    if w <= 0 or h <= 0:
        raise CalibrationError(f"{where}: image size must be positive, got {w}x{h}")
    try:
        hm, p = float(height_m), float(pitch or 0.0)
    except (TypeError, ValueError):
        raise CalibrationError(
            f"{where}: camera pose must be numbers (height_m metres, pitch radians), "
            f"got height_m={height_m!r}, pitch={pitch!r}"
        ) from None
    if not (math.isfinite(hm) and hm > 0) or not math.isfinite(p):
        raise CalibrationError(
            f"{where}: camera height_m must be a positive number of metres and pitch finite, "
            f"got height_m={height_m!r}, pitch={pitch!r}"
        )
    return Camera(fx=fx, fy=fy, cx=cx, cy=cy, width=w, height=h, height_m=hm, pitch=p)


def _field(data: dict, key: str, where: str):
    if key not in data or data[key] is None:
        raise CalibrationError(f"{where}: missing field {key!r}")
    return data[key]


def camera_from_camera_info_yaml(path: PathLike, *, height_m: float, pitch: float = 0.0) -> Camera:
    """A ROS camera_calibration YAML (``image_width``, ``image_height``, ``camera_matrix.data``) → Camera."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"camera info file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CalibrationError(f"camera info file {path} is not readable YAML: {first}") from None
    if not isinstance(data, dict):
        raise CalibrationError(
            f"camera info file {path} must hold a mapping with image_width, image_height "
            f"and camera_matrix, got {type(data).__name__}"
        )
    where = f"camera info file {path}"
    width = _field(data, "image_width", where)
    height = _field(data, "image_height", where)
    cm = _field(data, "camera_matrix", where)
    if isinstance(cm, dict):
        values = _field(cm, "data", f"{where} field 'camera_matrix'")
        rows, cols = cm.get("rows", 3), cm.get("cols", 3)
        if (rows, cols) != (3, 3):
            raise CalibrationError(f"{where}: field 'camera_matrix' must be 3x3, got rows={rows} cols={cols}")
    else:  # a bare list is accepted too
        values = cm
    if not isinstance(values, (list, tuple)):
        raise CalibrationError(f"{where}: field 'camera_matrix.data' must be a list of 9 numbers")
    if len(values) != 9:
        raise CalibrationError(f"{where}: field 'camera_matrix.data' needs 9 numbers (3x3), got {len(values)}")
    return camera_from_matrix(
        values, width, height, height_m=height_m, pitch=pitch, where=f"{where} field 'camera_matrix'"
    )


def camera_from_kitti_calib(
    path: PathLike, width: int, height: int, *, height_m: float, pitch: Optional[float] = None
) -> Camera:
    """A KITTI calib file (``P2``) → Camera at ``width``×``height`` (the file has no image size).

    ``pitch`` None = the pitch encoded in P2's rotation (0 for a rectified K[I|t]); a number
    overrides it.
    """
    try:
        calib = read_calib(path)
    except KittiFormatError as e:
        msg = str(e)
        raise CalibrationError("KITTI " + msg if msg.startswith("calib file") else "KITTI calib file " + msg) from None
    where = f"KITTI calib file {path} field 'P2'"
    P = np.asarray(calib["P2"], np.float64)
    if not np.all(np.isfinite(P)):
        raise CalibrationError(f"{where}: non-finite values")
    if np.linalg.matrix_rank(P[:, :3]) < 3:
        raise CalibrationError(f"{where}: the left 3x3 block is singular, not a projection matrix")
    try:
        w, h = int(width), int(height)
    except (TypeError, ValueError):
        raise CalibrationError(
            f"KITTI calib file {path}: image size must be integers, got {width!r}x{height!r}"
        ) from None
    if w <= 0 or h <= 0:
        raise CalibrationError(f"KITTI calib file {path}: image size must be positive, got {w}x{h}")
    cam = camera_from_calib(calib, w, h, height_m=float(height_m))
    # re-check through the common validator (positive focal lengths, height)
    cam = camera_from_matrix(cam.K, w, h, height_m=height_m, pitch=cam.pitch, where=where)
    return cam if pitch is None else cam.with_pose(cam.height_m, float(pitch))


def camera_from_camera_info(info: Any, *, height_m: float, pitch: float = 0.0) -> Camera:
    """A ``sensor_msgs/CameraInfo``-like object (``.k``, ``.width``, ``.height``) or the dict of
    :func:`sim2sg_core.data.bags.read_camera_info` (``k``, ``width``, ``height``) → Camera."""
    if info is None:
        raise CalibrationError("camera info: got None (no CameraInfo message)")
    if isinstance(info, dict):
        where = f"camera info {info.get('frame_id', '') or 'dict'}"
        k = _field(info, "k", where)
        width, height = _field(info, "width", where), _field(info, "height", where)
    else:
        frame = getattr(getattr(info, "header", None), "frame_id", "") or type(info).__name__
        where = f"camera info message {frame}"
        for attr in ("k", "width", "height"):
            if not hasattr(info, attr):
                raise CalibrationError(f"{where}: missing field {attr!r}")
        k, width, height = info.k, info.width, info.height
    return camera_from_matrix(k, width, height, height_m=height_m, pitch=pitch, where=f"{where} field 'k'")


def calibration_kind(spec: PathLike) -> str:
    """``'camera_info'`` (.yaml/.yml) or ``'kitti'`` (.txt); anything else raises CalibrationError."""
    suffix = Path(spec).suffix.lower()
    if suffix in YAML_SUFFIXES:
        return "camera_info"
    if suffix in KITTI_SUFFIXES:
        return "kitti"
    raise CalibrationError(
        f"calibration file {spec}: unknown type {suffix or '(no suffix)'!r}; expected a ROS "
        f"camera_info YAML ({', '.join(YAML_SUFFIXES)}) or a KITTI calib file (.txt)"
    )


def load_camera(
    spec: Any, *, height_m: float, pitch: Optional[float] = None, image_size: Optional[Sequence[int]] = None
) -> Camera:
    """A calibration given as a path (``.yaml``/``.yml`` camera_info, ``.txt`` KITTI calib), a
    CameraInfo message / dict, or a Camera → Camera with pose (``height_m``, ``pitch``).

    ``pitch`` None = what the calibration encodes (KITTI P2 rotation), else 0. ``image_size``
    (width, height) is required for a KITTI calib file (it has no image size); for the other kinds
    it is ignored (use :meth:`Camera.scaled` to change the size).
    """
    if isinstance(spec, Camera):
        return spec.with_pose(height_m, spec.pitch if pitch is None else pitch)
    if not isinstance(spec, (str, os.PathLike)):
        return camera_from_camera_info(spec, height_m=height_m, pitch=pitch or 0.0)
    kind = calibration_kind(spec)
    if kind == "camera_info":
        return camera_from_camera_info_yaml(spec, height_m=height_m, pitch=pitch or 0.0)
    if image_size is None:
        raise CalibrationError(
            f"KITTI calib file {spec} has no image size; pass image_size=(width, height) "
            "(e.g. the size of the images it belongs to)"
        )
    if len(image_size) != 2:
        raise CalibrationError(f"KITTI calib file {spec}: image_size must be (width, height), got {image_size!r}")
    return camera_from_kitti_calib(spec, image_size[0], image_size[1], height_m=height_m, pitch=pitch)


def add_camera_arguments(parser, info_help: str, pose_help: str = "") -> None:
    """``--camera-info PATH``, ``--camera-height M``, ``--camera-pitch RAD`` (all default None): the one
    spelling of a real camera on every command line (train, adapt, bench, simulator render)."""
    parser.add_argument(
        "--camera-info",
        dest="camera_info",
        default=None,
        metavar="PATH",
        help=f"{info_help}: ROS camera_info YAML or KITTI calib .txt",
    )
    parser.add_argument(
        "--camera-height",
        dest="camera_height",
        type=float,
        default=None,
        metavar="M",
        help="camera mount height above the road in metres" + (f" ({pose_help})" if pose_help else ""),
    )
    parser.add_argument(
        "--camera-pitch",
        dest="camera_pitch",
        type=float,
        default=None,
        metavar="RAD",
        help="camera downward pitch in radians" + (f" ({pose_help})" if pose_help else ""),
    )


__all__ = [
    "CalibrationError",
    "add_camera_arguments",
    "calibration_kind",
    "camera_from_camera_info",
    "camera_from_camera_info_yaml",
    "camera_from_kitti_calib",
    "camera_from_matrix",
    "load_camera",
]
