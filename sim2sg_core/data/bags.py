"""rosbag2 camera streams with ``rosbags`` (no ROS install needed): write and read image bags.

A written bag holds ``sensor_msgs/msg/Image`` (``rgb8``/``bgr8``/…) or
``sensor_msgs/msg/CompressedImage`` (jpeg/png; topic ``<topic>/compressed`` as image_transport
names it) plus ``sensor_msgs/msg/CameraInfo`` on ``<namespace>/camera_info``, stamped at
``rate_hz``. Bags are MCAP by default (``storage='sqlite3'`` on request) and written atomically:
into a temporary directory next to the destination, renamed into place when complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.errors import WriterError
from rosbags.typesys import Stores, get_typestore

from sim2sg_core.data.image_codec import (
    ImageDecodeError,
    check_rgb,
    compressed_format_string,
    decode_compressed,
    decode_raw,
    encode_compressed,
    encode_raw,
)

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
INFO_TYPE = "sensor_msgs/msg/CameraInfo"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
PathLike = Union[str, os.PathLike]


class BagError(RuntimeError):
    """A bag that is missing, unreadable or cannot be written."""


class BagTopicError(BagError):
    """The requested topic is not an image topic of the bag(s); the message lists the ones present."""


_TYPESTORE = None


def typestore():
    """The ROS 2 Jazzy message definitions bundled with rosbags (cached)."""
    global _TYPESTORE
    if _TYPESTORE is None:
        _TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
    return _TYPESTORE


def camera_info_topic(image_topic: str) -> str:
    """``/cam/image_raw`` and ``/cam/image_raw/compressed`` → ``/cam/camera_info``."""
    t = image_topic.rstrip("/")
    if t.endswith("/compressed"):
        t = t[: -len("/compressed")]
    ns = t.rsplit("/", 1)[0]
    return f"{ns}/camera_info" if ns else "/camera_info"


def _header(ts, stamp_ns: int, frame_id: str):
    Time = ts.types["builtin_interfaces/msg/Time"]
    Header = ts.types["std_msgs/msg/Header"]
    return Header(
        stamp=Time(sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000)), frame_id=frame_id
    )


def _camera_info(ts, header, width: int, height: int, camera) -> object:
    if camera is not None:
        fx, fy, cx, cy = float(camera.fx), float(camera.fy), float(camera.cx), float(camera.cy)
    else:  # a plausible default: 90 degree horizontal field of view
        fx = fy = width / 2.0
        cx, cy = width / 2.0, height / 2.0
    CameraInfo = ts.types[INFO_TYPE]
    ROI = ts.types["sensor_msgs/msg/RegionOfInterest"]
    return CameraInfo(
        header=header,
        height=int(height),
        width=int(width),
        distortion_model="plumb_bob",
        d=np.zeros(5, np.float64),
        k=np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1], np.float64),
        r=np.eye(3, dtype=np.float64).reshape(-1),
        p=np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0], np.float64),
        binning_x=0,
        binning_y=0,
        roi=ROI(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )


def _frames(frames: Iterable, start_ns: int, period_ns: int) -> Iterator[tuple[int, np.ndarray]]:
    for i, f in enumerate(frames):
        if isinstance(f, tuple) and len(f) == 2 and isinstance(f[0], (int, np.integer)):
            yield int(f[0]), f[1]
        elif hasattr(f, "image"):  # a simulator Sample
            yield start_ns + i * period_ns, f.image
        else:
            yield start_ns + i * period_ns, f


def write_image_bag(
    path: PathLike,
    frames: Iterable,
    *,
    topic: str = "/camera/image_raw",
    storage: str = "mcap",
    compressed: bool = False,
    encoding: str = "rgb8",
    compressed_format: str = "jpeg",
    jpeg_quality: int = 90,
    camera=None,
    rate_hz: float = 10.0,
    frame_id: str = "camera",
    start_ns: Optional[int] = None,
    overwrite: bool = False,
    progress=None,
) -> Path:
    """Write ``frames`` (RGB uint8 arrays, ``(stamp_ns, rgb)`` pairs or simulator Samples) as a bag.

    Returns the bag directory. ``camera`` (a :class:`sim2sg_core.geometry.Camera`) fills CameraInfo;
    without it a 90° field of view is assumed. ``start_ns`` defaults to the current time.
    """
    path = Path(path)
    plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
    if storage not in plugins:
        raise BagError(f"unknown bag storage {storage!r}; use 'mcap' or 'sqlite3'")
    if rate_hz <= 0:
        raise BagError(f"rate_hz must be positive, got {rate_hz}")
    if path.exists() and not overwrite:
        raise BagError(f"{path} exists already; pass overwrite=True (or --overwrite) to replace it")
    if compressed and not topic.rstrip("/").endswith("/compressed"):
        topic = topic.rstrip("/") + "/compressed"
    info_topic = camera_info_topic(topic)
    ts = typestore()
    period = int(round(1e9 / rate_hz))
    start = int(time.time_ns() if start_ns is None else start_ns)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp_bag = tmpdir / path.name
    try:
        writer = Writer(tmp_bag, version=9, storage_plugin=plugins[storage])
        writer.open()
        try:
            msgtype = COMPRESSED_TYPE if compressed else IMAGE_TYPE
            conn = writer.add_connection(topic, msgtype, typestore=ts)
            info_conn = writer.add_connection(info_topic, INFO_TYPE, typestore=ts)
            Image, Compressed = ts.types[IMAGE_TYPE], ts.types[COMPRESSED_TYPE]
            fmt = compressed_format_string(compressed_format) if compressed else ""
            n = 0
            for stamp, rgb in _frames(frames, start, period):
                rgb = check_rgb(rgb)
                h, w = rgb.shape[:2]
                header = _header(ts, stamp, frame_id)
                if compressed:
                    data = encode_compressed(rgb, compressed_format, quality=jpeg_quality)
                    msg = Compressed(header=header, format=fmt, data=np.frombuffer(data, np.uint8))
                else:
                    data, step = encode_raw(rgb, encoding)
                    msg = Image(
                        header=header,
                        height=h,
                        width=w,
                        encoding=encoding,
                        is_bigendian=0,
                        step=step,
                        data=np.frombuffer(data, np.uint8),
                    )
                writer.write(conn, stamp, ts.serialize_cdr(msg, msgtype))
                info = _camera_info(ts, header, w, h, camera)
                writer.write(info_conn, stamp, ts.serialize_cdr(info, INFO_TYPE))
                n += 1
                if progress is not None:
                    progress.update(1)
        finally:
            writer.close()
        if n == 0:
            raise BagError(f"no frames to write to {path}")
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp_bag, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp_bag, path)
    except WriterError as e:
        raise BagError(f"cannot write bag {path}: {e}") from None
    except ImageDecodeError as e:
        raise BagError(f"cannot write bag {path}: {e}") from None
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return path


# ----------------------------------------------------------------------------------------------
# Reading


def _as_paths(paths) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    out = [Path(p) for p in paths]
    if not out:
        raise BagError("no bag paths given")
    return out


def _open(path: Path):
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as e:  # noqa: BLE001 - rosbags raises several types for corrupt input
        raise BagError(f"{path} is not a readable rosbag2 bag ({type(e).__name__}: {e})") from None
    return reader


def list_topics(paths) -> dict[str, str]:
    """All topics → message type over one or several bags."""
    out: dict[str, str] = {}
    for p in _as_paths(paths):
        reader = _open(p)
        try:
            for c in reader.connections:
                out.setdefault(c.topic, c.msgtype)
        finally:
            reader.close()
    return out


def list_image_topics(paths) -> dict[str, str]:
    """Image topics (``Image`` or ``CompressedImage``) → message type."""
    return {t: m for t, m in list_topics(paths).items() if m in IMAGE_TYPES}


def read_bag_images(paths, topic: str) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(stamp_ns, rgb)`` for every message of image ``topic`` over the bags, in order.

    The stamp is the message header stamp (the bag receive time when the header is zero). A topic
    that is absent (or not an image type) raises :class:`BagTopicError` listing the image topics.
    """
    bag_paths = _as_paths(paths)
    topics = list_topics(bag_paths)
    images = {t: m for t, m in topics.items() if m in IMAGE_TYPES}
    if topic not in images:
        what = "is not an image topic" if topic in topics else "is not in"
        raise BagTopicError(
            f"topic {topic!r} {what} {', '.join(str(p) for p in bag_paths)}; "
            f"image topics present: {sorted(images) or 'none'}"
        )
    return _iter_images(bag_paths, topic)


def _iter_images(bag_paths: list[Path], topic: str) -> Iterator[tuple[int, np.ndarray]]:
    ts = typestore()
    for p in bag_paths:
        reader = _open(p)
        try:
            conns = [c for c in reader.connections if c.topic == topic]
            if not conns:
                continue
            for conn, logtime, raw in reader.messages(connections=conns):
                try:
                    msg = ts.deserialize_cdr(raw, conn.msgtype)
                except Exception as e:  # noqa: BLE001
                    raise BagError(
                        f"{p}: cannot deserialize a {conn.msgtype} message on {topic} at t={logtime} ns ({e})"
                    ) from None
                stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
                stamp = stamp or int(logtime)
                try:
                    if conn.msgtype == COMPRESSED_TYPE:
                        rgb = decode_compressed(msg.format, msg.data)
                    else:
                        rgb = decode_raw(
                            msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian)
                        )
                except ImageDecodeError as e:
                    raise BagError(f"{p}: bad image on {topic} at stamp {stamp} ns: {e}") from None
                yield stamp, rgb
        finally:
            reader.close()


def read_camera_info(paths, topic: str) -> Optional[dict]:
    """First CameraInfo on ``topic`` as a dict (width, height, k, p) or None."""
    ts = typestore()
    for p in _as_paths(paths):
        reader = _open(p)
        try:
            conns = [c for c in reader.connections if c.topic == topic and c.msgtype == INFO_TYPE]
            for _conn, _, raw in reader.messages(connections=conns):
                m = ts.deserialize_cdr(raw, INFO_TYPE)
                return {
                    "width": int(m.width),
                    "height": int(m.height),
                    "k": np.asarray(m.k).reshape(3, 3),
                    "p": np.asarray(m.p).reshape(3, 4),
                    "frame_id": m.header.frame_id,
                }
        finally:
            reader.close()
    return None


__all__ = [
    "BagError",
    "BagTopicError",
    "camera_info_topic",
    "list_image_topics",
    "list_topics",
    "read_bag_images",
    "read_camera_info",
    "write_image_bag",
]
