"""ROS image encodings ↔ RGB: round trips for every encoding and clear errors for bad input."""

from __future__ import annotations

import array

import cv2
import numpy as np
import pytest

from sim2sg_core.data.image_codec import (
    ImageDecodeError,
    compressed_format_string,
    decode_compressed,
    decode_raw,
    encode_compressed,
    encode_raw,
)


@pytest.fixture(scope="module")
def rgb():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (23, 37, 3), dtype=np.uint8)  # odd sizes catch stride mistakes
    img[0, 0] = (255, 0, 0)
    return img


@pytest.mark.parametrize("enc", ["rgb8", "bgr8", "rgba8", "bgra8", "rgb16", "bgr16", "8UC3"])
def test_colour_encodings_round_trip_exactly(rgb, enc):
    data, step = encode_raw(rgb, enc)
    assert len(data) == step * rgb.shape[0]
    out = decode_raw(enc, rgb.shape[0], rgb.shape[1], step, data)
    assert out.dtype == np.uint8 and out.shape == rgb.shape and out.flags.writeable
    np.testing.assert_array_equal(out, rgb)
    assert tuple(out[0, 0]) == (255, 0, 0)


@pytest.mark.parametrize("enc", ["mono8", "mono16", "8UC1", "16UC1"])
def test_mono_encodings_decode_to_grey_rgb(rgb, enc):
    data, step = encode_raw(rgb, enc)
    out = decode_raw(enc, rgb.shape[0], rgb.shape[1], step, data)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(out, np.repeat(grey[..., None], 3, axis=2))


def test_byte_order_channel_order_and_16_bit_scaling():
    bgr = bytes([10, 20, 30])  # one pixel, B G R
    assert tuple(decode_raw("bgr8", 1, 1, 3, bgr)[0, 0]) == (30, 20, 10)
    big = np.array([65535, 32896, 0], ">u2").tobytes()  # rgb16 big-endian
    assert tuple(decode_raw("rgb16", 1, 1, 6, big, is_bigendian=True)[0, 0]) == (255, 128, 0)
    little = np.array([65535, 32896, 0], "<u2").tobytes()
    assert tuple(decode_raw("rgb16", 1, 1, 6, little)[0, 0]) == (255, 128, 0)


def test_padded_rows_and_buffer_types(rgb):
    h, w = rgb.shape[:2]
    step = w * 3 + 5
    padded = np.zeros((h, step), np.uint8)
    padded[:, : w * 3] = rgb.reshape(h, -1)
    for buf in (
        padded.tobytes(),
        bytearray(padded.tobytes()),
        memoryview(padded.tobytes()),
        padded.reshape(-1),
        array.array("B", padded.tobytes()),
    ):
        np.testing.assert_array_equal(decode_raw("rgb8", h, w, step, buf), rgb)


def test_bad_raw_input_gives_clear_errors(rgb):
    h, w = rgb.shape[:2]
    data, step = encode_raw(rgb, "rgb8")
    with pytest.raises(ImageDecodeError, match=r"step 10 is smaller than one rgb8 row of 37 pixels \(111 bytes\)"):
        decode_raw("rgb8", h, w, 10, data)
    with pytest.raises(ImageDecodeError, match="truncated"):
        decode_raw("rgb8", h, w, step, data[:-7])
    with pytest.raises(ImageDecodeError, match="more than step\\*height"):
        decode_raw("rgb8", h, w, step, data + b"\0")
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_raw("rgb8", h, w, step, b"")
    with pytest.raises(ImageDecodeError, match="must be positive"):
        decode_raw("rgb8", 0, w, step, data)
    with pytest.raises(ImageDecodeError, match="unsupported image encoding 'yuv422'"):
        decode_raw("yuv422", h, w, step, data)
    with pytest.raises(ImageDecodeError, match="RGB uint8"):
        encode_raw(rgb.astype(np.float32), "rgb8")


def test_compressed_round_trip_and_errors(rgb):
    smooth = cv2.GaussianBlur(cv2.resize(rgb, (160, 120)), (0, 0), 3)
    png = encode_compressed(smooth, "png")
    np.testing.assert_array_equal(decode_compressed("png", png), smooth)
    jpg = encode_compressed(smooth, "jpeg", quality=95)
    assert jpg[:2] == b"\xff\xd8"
    out = decode_compressed(compressed_format_string("jpeg"), jpg)
    assert out.shape == smooth.shape and np.abs(out.astype(int) - smooth).mean() < 3.0
    assert compressed_format_string("jpeg") == "rgb8; jpeg compressed bgr8"
    with pytest.raises(ImageDecodeError, match=r"cannot decode 11 bytes .*'jpeg'"):
        decode_compressed("jpeg", b"not-a-jpeg!")
    with pytest.raises(ImageDecodeError, match="cannot decode"):
        decode_compressed("jpeg", jpg[: len(jpg) // 8])
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_compressed("png", b"")
    with pytest.raises(ImageDecodeError, match="unsupported compressed format 'webp'"):
        encode_compressed(smooth, "webp")
