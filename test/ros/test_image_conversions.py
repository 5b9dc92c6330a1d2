"""sensor_msgs Image / CompressedImage ↔ RGB numpy, through real message objects (no DDS needed)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sensor_msgs.msg", reason="ROS messages not importable: run `make setup`, `source scripts/env.sh`")

from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from sim2sg_core.data.image_codec import ImageDecodeError  # noqa: E402
from sim2sg_ros import conversions  # noqa: E402


@pytest.fixture(scope="module")
def rgb():
    """A real simulator frame (colours, edges) cropped odd-sized, so row padding and channel order matter."""
    from sim2sg_core.sim import Simulator

    return np.ascontiguousarray(Simulator(env="drive", domain="target", seed=1).sample(0).image[40:101, 100:333])


def _gray(rgb):
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


LOSSLESS = ["rgb8", "bgr8", "rgba8", "bgra8", "rgb16", "bgr16", "rgba16", "bgra16"]


@pytest.mark.parametrize("encoding", LOSSLESS)
def test_numpy_path_round_trips_colour_encodings(rgb, encoding):
    msg = conversions.rgb_to_image_msg(rgb, encoding, backend="numpy")
    assert msg.encoding == encoding and (msg.height, msg.width) == rgb.shape[:2]
    assert len(msg.data) == msg.step * msg.height
    out = conversions.image_msg_to_rgb(msg, backend="numpy")
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    np.testing.assert_array_equal(out, rgb)


def test_bgr8_bytes_are_really_bgr(rgb):
    """Channel order is checked against the raw bytes, not only by a round trip."""
    msg = conversions.rgb_to_image_msg(rgb, "bgr8", backend="numpy")
    raw = np.frombuffer(bytes(msg.data), np.uint8).reshape(rgb.shape)
    np.testing.assert_array_equal(raw[..., ::-1], rgb)
    m = Image(height=1, width=2, encoding="bgr8", step=6, data=bytes([0, 0, 255, 255, 0, 0]))
    np.testing.assert_array_equal(conversions.image_msg_to_rgb(m, backend="numpy"), [[[255, 0, 0], [0, 0, 255]]])


@pytest.mark.parametrize("encoding", ["mono8", "mono16"])
def test_numpy_path_mono_replicates_gray(rgb, encoding):
    out = conversions.image_msg_to_rgb(conversions.rgb_to_image_msg(rgb, encoding, backend="numpy"), backend="numpy")
    g = _gray(rgb)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)


def test_16bit_big_endian_and_padded_rows():
    vals = np.array([[0, 257 * 128, 65535]], dtype=">u2")  # 1x3 mono16, big endian
    step = 3 * 2 + 4  # 4 bytes of row padding
    data = vals.tobytes() + b"\x00" * 4
    m = Image(height=1, width=3, encoding="mono16", is_bigendian=1, step=step, data=data)
    out = conversions.image_msg_to_rgb(m, backend="numpy")
    np.testing.assert_array_equal(out[0, :, 0], [0, 128, 255])


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_round_trip(rgb, fmt):
    msg = conversions.rgb_to_compressed_msg(rgb, fmt)
    assert isinstance(msg, CompressedImage) and fmt in msg.format
    out = conversions.image_msg_to_rgb(msg, backend="numpy")
    assert out.shape == rgb.shape
    if fmt == "png":
        np.testing.assert_array_equal(out, rgb)
    else:
        assert np.abs(out.astype(int) - rgb.astype(int)).mean() < 6.0


def test_header_is_copied(rgb):
    from std_msgs.msg import Header

    h = Header(frame_id="cam")
    h.stamp.sec, h.stamp.nanosec = 12, 34
    for msg in (conversions.rgb_to_image_msg(rgb, "rgb8", h), conversions.rgb_to_compressed_msg(rgb, "png", h)):
        assert (msg.header.frame_id, msg.header.stamp.sec, msg.header.stamp.nanosec) == ("cam", 12, 34)


@pytest.mark.parametrize(
    "make,fragment",
    [
        (lambda d, h, w: Image(height=h, width=w, encoding="yuv422", step=w * 2, data=d[: h * w * 2]), "unsupported"),
        (lambda d, h, w: Image(height=h, width=w, encoding="rgb8", step=w * 3 - 3, data=d), "step"),
        (lambda d, h, w: Image(height=h, width=w, encoding="rgb8", step=w * 3, data=d[:-7]), "truncated"),
        (lambda d, h, w: Image(height=h, width=w, encoding="rgb8", step=w * 3, data=b""), "empty"),
        (lambda d, h, w: Image(height=0, width=0, encoding="rgb8", step=0, data=b""), "empty"),
        (lambda d, h, w: CompressedImage(format="jpeg", data=b"\xff\xd8\xff garbage"), "cannot decode"),
        (lambda d, h, w: CompressedImage(format="jpeg", data=b""), "empty"),
    ],
)
def test_bad_frames_raise_image_decode_error(rgb, make, fragment):
    h, w = rgb.shape[:2]
    msg = make(rgb.tobytes(), h, w)
    with pytest.raises(ImageDecodeError, match=fragment):
        conversions.image_msg_to_rgb(msg, backend="numpy")
    assert issubclass(ImageDecodeError, ValueError)  # the node catches ValueError for every bad frame


def test_unknown_backend_is_refused(rgb):
    with pytest.raises(ValueError, match="backend"):
        conversions.image_msg_to_rgb(conversions.rgb_to_image_msg(rgb), backend="magic")


@pytest.mark.skipif(
    conversions.cv_bridge_available(), reason="cv_bridge importable: the cv_bridge tests below cover that environment"
)
def test_cv_bridge_requested_but_missing_is_a_clear_error(rgb):
    with pytest.raises(RuntimeError, match="cv_bridge is not importable"):
        conversions.image_msg_to_rgb(conversions.rgb_to_image_msg(rgb), backend="cv_bridge")


needs_bridge = pytest.mark.skipif(
    not conversions.cv_bridge_available(),
    reason="cv_bridge is not importable here (not on PyPI; a stock ROS 2 install "
    "has it); the NumPy path above is what runs in this environment",
)


@needs_bridge
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
def test_cv_bridge_path_matches_numpy_path(rgb, encoding):
    msg = conversions.rgb_to_image_msg(rgb, encoding, backend="numpy")
    np.testing.assert_array_equal(
        conversions.image_msg_to_rgb(msg, backend="cv_bridge"), conversions.image_msg_to_rgb(msg, backend="numpy")
    )
    back = conversions.rgb_to_image_msg(rgb, encoding, backend="cv_bridge")
    np.testing.assert_array_equal(
        conversions.image_msg_to_rgb(back, backend="numpy"), conversions.image_msg_to_rgb(msg, backend="numpy")
    )


@needs_bridge
def test_cv_bridge_path_compressed_and_bad_frames(rgb):
    msg = conversions.rgb_to_compressed_msg(rgb, "png")
    np.testing.assert_array_equal(conversions.image_msg_to_rgb(msg, backend="cv_bridge"), rgb)
    with pytest.raises(ImageDecodeError):
        conversions.image_msg_to_rgb(CompressedImage(format="jpeg", data=b"\xff\xd8 garbage"), backend="cv_bridge")
    h, w = rgb.shape[:2]
    with pytest.raises(ImageDecodeError):
        conversions.image_msg_to_rgb(
            Image(height=h, width=w, encoding="rgb8", step=w * 3, data=b""), backend="cv_bridge"
        )
