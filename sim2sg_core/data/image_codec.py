"""ROS image encodings ↔ RGB uint8 numpy, without ROS (shared by bag I/O and the ROS node).

``decode_raw`` follows ``sensor_msgs/Image`` semantics: ``step`` is the row length in bytes
(rows may be padded), ``data`` holds exactly ``step * height`` bytes. 16-bit encodings are scaled
to 8 bits by ``value / 257`` (full 16-bit range → full 8-bit range, exact inverse of
``encode_raw``); mono images are replicated to three channels; alpha is dropped.
"""

from __future__ import annotations

import array
from typing import Union

import cv2
import numpy as np

BufferLike = Union[bytes, bytearray, memoryview, np.ndarray, array.array]


class ImageDecodeError(ValueError):
    """Image bytes that do not match their declared encoding/size, or cannot be decoded."""


#: encoding → (channels, bytes per channel, conversion to RGB or None)
ENCODINGS = {
    "rgb8": (3, 1, None),
    "bgr8": (3, 1, cv2.COLOR_BGR2RGB),
    "rgba8": (4, 1, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, 1, cv2.COLOR_BGRA2RGB),
    "mono8": (1, 1, cv2.COLOR_GRAY2RGB),
    "8uc1": (1, 1, cv2.COLOR_GRAY2RGB),
    "8uc3": (3, 1, cv2.COLOR_BGR2RGB),  # OpenCV convention: BGR
    "mono16": (1, 2, cv2.COLOR_GRAY2RGB),
    "16uc1": (1, 2, cv2.COLOR_GRAY2RGB),
    "rgb16": (3, 2, None),
    "bgr16": (3, 2, cv2.COLOR_BGR2RGB),
    "rgba16": (4, 2, cv2.COLOR_RGBA2RGB),
    "bgra16": (4, 2, cv2.COLOR_BGRA2RGB),
}
SUPPORTED_ENCODINGS = (
    "rgb8",
    "bgr8",
    "rgba8",
    "bgra8",
    "mono8",
    "mono16",
    "rgb16",
    "bgr16",
    "rgba16",
    "bgra16",
    "8UC1",
    "8UC3",
    "16UC1",
)


def _as_bytes_view(data: BufferLike) -> np.ndarray:
    if data is None:
        raise ImageDecodeError("image data is missing (None)")
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8) if data.dtype != np.uint8 else data.reshape(-1)
    try:
        return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    except TypeError:
        return np.asarray(list(data), dtype=np.uint8)  # e.g. a plain list of ints


def decode_raw(
    encoding: str, height: int, width: int, step: int, data: BufferLike, is_bigendian: bool = False
) -> np.ndarray:
    """Raw ``sensor_msgs/Image`` fields → RGB uint8 (height, width, 3) (a new, writable array)."""
    enc = (encoding or "").strip()
    spec = ENCODINGS.get(enc.lower())
    if spec is None:
        raise ImageDecodeError(f"unsupported image encoding {encoding!r}; supported: {list(SUPPORTED_ENCODINGS)}")
    ch, bpc, conv = spec
    height, width, step = int(height), int(width), int(step)
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"image size {width}x{height} is empty; width and height must be positive")
    row = width * ch * bpc
    if step < row:
        raise ImageDecodeError(f"step {step} is smaller than one {enc} row of {width} pixels ({row} bytes)")
    buf = _as_bytes_view(data)
    if buf.size == 0:
        raise ImageDecodeError(f"image data is empty for a {width}x{height} {enc} image")
    need = step * height
    if buf.size < need:
        raise ImageDecodeError(
            f"image data has {buf.size} bytes, {width}x{height} {enc} with step {step} "
            f"needs {need} (truncated message?)"
        )
    if buf.size > need:
        raise ImageDecodeError(
            f"image data has {buf.size} bytes, more than step*height = {need} for "
            f"{width}x{height} {enc} (wrong step or size?)"
        )
    rows = buf.reshape(height, step)[:, :row]
    if bpc == 1:
        img = rows.reshape(height, width, ch) if ch > 1 else rows.reshape(height, width)
    else:
        wide = np.ascontiguousarray(rows).view(">u2" if is_bigendian else "<u2")
        wide = wide.astype(np.uint16, copy=False)  # native byte order (copies only when swapped)
        wide = wide.reshape((height, width, ch) if ch > 1 else (height, width))
        # 16 → 8 bits over the full range: round(x / 257), exact inverse of encode_raw
        img = cv2.convertScaleAbs(wide, alpha=1.0 / 257.0)
    if conv is None:
        return np.array(img, dtype=np.uint8, copy=True, order="C")
    return cv2.cvtColor(np.ascontiguousarray(img), conv)


def encode_raw(rgb: np.ndarray, encoding: str = "rgb8") -> tuple[bytes, int]:
    """RGB uint8 (H, W, 3) → (data bytes, step) in ``encoding`` (mono via luminance)."""
    rgb = check_rgb(rgb)
    enc = encoding.strip()
    spec = ENCODINGS.get(enc.lower())
    if spec is None:
        raise ImageDecodeError(f"unsupported image encoding {encoding!r}; supported: {list(SUPPORTED_ENCODINGS)}")
    ch, bpc, _ = spec
    e = enc.lower()
    if ch == 1:
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    elif e in ("rgb8", "rgb16"):
        out = rgb
    elif e in ("bgr8", "8uc3", "bgr16"):
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    elif e in ("rgba8", "rgba16"):
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
    else:  # bgra
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
    if bpc == 2:
        out = (out.astype(np.uint16) * 257).astype("<u2")
    out = np.ascontiguousarray(out)
    return out.tobytes(), int(rgb.shape[1] * ch * bpc)


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageDecodeError(
            f"expected an RGB uint8 array of shape (H, W, 3), got "
            f"{getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}"
        )
    return np.ascontiguousarray(rgb)


def _compressed_kind(fmt: str) -> str:
    f = (fmt or "").lower()
    if "png" in f:
        return "png"
    if "jpeg" in f or "jpg" in f:
        return "jpeg"
    return ""


def decode_compressed(fmt: str, data: BufferLike) -> np.ndarray:
    """``sensor_msgs/CompressedImage`` (``format`` e.g. ``jpeg`` or ``rgb8; jpeg compressed bgr8``) → RGB uint8."""
    buf = _as_bytes_view(data)
    if buf.size == 0:
        raise ImageDecodeError(f"compressed image data ({fmt or 'unknown format'}) is empty")
    kind = _compressed_kind(fmt)  # "" for an unknown label: OpenCV sniffs the bytes; the error says so
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None:
        raise ImageDecodeError(
            f"cannot decode {buf.size} bytes of compressed image data declared as "
            f"{fmt!r} (corrupt or not {kind or 'jpeg/png'})"
        )
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def encode_compressed(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """RGB uint8 → JPEG or PNG bytes (colour data stored BGR, as image_transport does)."""
    rgb = check_rgb(rgb)
    kind = _compressed_kind(fmt)
    if not kind:
        raise ImageDecodeError(f"unsupported compressed format {fmt!r}; use 'jpeg' or 'png'")
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if kind == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(".jpg" if kind == "jpeg" else ".png", bgr, params)
    if not ok:
        raise ImageDecodeError(f"OpenCV failed to encode a {rgb.shape[1]}x{rgb.shape[0]} image as {kind}")
    return buf.tobytes()


def compressed_format_string(fmt: str = "jpeg") -> str:
    """The ``format`` field image_transport writes for an RGB source: ``rgb8; jpeg compressed bgr8``."""
    kind = _compressed_kind(fmt)
    if not kind:
        raise ImageDecodeError(f"unsupported compressed format {fmt!r}; use 'jpeg' or 'png'")
    return f"rgb8; {kind} compressed bgr8"


__all__ = [
    "ImageDecodeError",
    "SUPPORTED_ENCODINGS",
    "check_rgb",
    "compressed_format_string",
    "decode_compressed",
    "decode_raw",
    "encode_compressed",
    "encode_raw",
]
