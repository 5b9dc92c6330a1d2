"""rosbag2 image bags written and read with rosbags: MCAP and sqlite3, raw and compressed."""

from __future__ import annotations

import sqlite3

import cv2
import numpy as np
import pytest

from sim2sg_core.data.bags import (
    BagError,
    BagTopicError,
    list_image_topics,
    list_topics,
    read_bag_images,
    read_camera_info,
    write_image_bag,
)
from sim2sg_core.sim import Camera

START = 1_700_000_000_123_000_000


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(3)
    noise = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (0, 0), 2.0)
    base = cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX)  # smooth but full range
    return [np.roll(base, 5 * i, axis=1) for i in range(4)]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("mode", ["rgb8", "bgr8", "jpeg", "png"])
def test_write_read_round_trip(tmp_path, frames, storage, mode):
    cam = Camera.from_fov(64, 48, 70.0)
    compressed = mode in ("jpeg", "png")
    bag = write_image_bag(
        tmp_path / "cam",
        frames,
        storage=storage,
        compressed=compressed,
        encoding=mode if not compressed else "rgb8",
        compressed_format=mode if compressed else "jpeg",
        camera=cam,
        rate_hz=10.0,
        start_ns=START,
        jpeg_quality=98,
    )
    topic = "/camera/image_raw/compressed" if compressed else "/camera/image_raw"
    expected_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    assert list_image_topics(bag) == {topic: expected_type}
    assert list_topics(bag)["/camera/camera_info"] == "sensor_msgs/msg/CameraInfo"
    got = list(read_bag_images(bag, topic))
    assert [s for s, _ in got] == [START + i * 100_000_000 for i in range(len(frames))]
    for (_, rgb), ref in zip(got, frames):
        assert rgb.shape == ref.shape and rgb.dtype == np.uint8
        if mode == "jpeg":
            err = np.abs(rgb.astype(int) - ref).mean()
            assert err < 8 and err < 0.5 * np.abs(rgb[..., ::-1].astype(int) - ref).mean()  # not channel-swapped
        else:
            np.testing.assert_array_equal(rgb, ref)
    info = read_camera_info(bag, "/camera/camera_info")
    assert info["width"] == 64 and info["height"] == 48 and info["frame_id"] == "camera"
    np.testing.assert_allclose(info["k"], cam.K)
    # the storage file is the real thing
    files = list(bag.iterdir())
    assert (bag / "metadata.yaml").is_file()
    data = [f for f in files if f.suffix in (".mcap", ".db3")]
    assert len(data) == 1
    head = data[0].read_bytes()[:16]
    if storage == "mcap":
        assert head.startswith(b"\x89MCAP0\r\n")
    else:
        assert head.startswith(b"SQLite format 3")
        with sqlite3.connect(data[0]) as con:
            assert con.execute("select count(*) from messages").fetchone()[0] == 2 * len(frames)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_missing_topic_lists_the_image_topics(tmp_path, frames):
    bag = write_image_bag(tmp_path / "b", frames[:2], topic="/front/image_raw", start_ns=START)
    with pytest.raises(
        BagTopicError,
        match=r"'/rear/image_raw' is not in .*image topics present: "
        r"\['/front/image_raw'\]",
    ):
        read_bag_images(bag, "/rear/image_raw")
    with pytest.raises(BagTopicError, match="'/front/camera_info' is not an image topic"):
        read_bag_images(bag, "/front/camera_info")


def test_missing_corrupt_and_existing_bags(tmp_path, frames):
    with pytest.raises(BagError, match="does not exist"):
        list_image_topics(tmp_path / "nothing")
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"this is not a bag" * 4)
    with pytest.raises(BagError, match="junk.mcap is not a readable rosbag2 bag"):
        read_bag_images(junk, "/camera/image_raw")
    bag = write_image_bag(tmp_path / "b", frames[:1], start_ns=START)
    with pytest.raises(BagError, match="exists already"):
        write_image_bag(bag, frames[:2], start_ns=START)
    assert len(list(read_bag_images(bag, "/camera/image_raw"))) == 1  # untouched
    write_image_bag(bag, frames[:3], start_ns=START, overwrite=True)
    assert len(list(read_bag_images(bag, "/camera/image_raw"))) == 3
    with pytest.raises(BagError, match="unknown bag storage 'rosbag1'"):
        write_image_bag(tmp_path / "c", frames, storage="rosbag1")
    with pytest.raises(BagError, match="RGB uint8"):
        write_image_bag(tmp_path / "d", [frames[0].astype(np.float32)])
    assert not (tmp_path / "d").exists()


def test_reading_several_bags_in_order(tmp_path, frames):
    a = write_image_bag(tmp_path / "a", frames[:2], start_ns=START, storage="mcap")
    b = write_image_bag(tmp_path / "b", frames[2:], start_ns=START + 10**9, storage="sqlite3")
    got = list(read_bag_images([a, b], "/camera/image_raw"))
    assert len(got) == 4
    for (_, rgb), ref in zip(got, frames):
        np.testing.assert_array_equal(rgb, ref)
