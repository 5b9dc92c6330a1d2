"""Target-image sources: images only, evenly subsampled, bags read through rosbags, clear errors."""

import os
import sys

import cv2
import numpy as np
import pytest

from sim2sg_core.adapt.targets import (
    ArrayTargetSource,
    BagTargetSource,
    ImageFolderSource,
    SimTargetSource,
    TargetSourceError,
    target_source_from_spec,
)


def _frames(n, w=64, h=32):
    out = []
    for i in range(n):
        im = np.zeros((h, w, 3), np.uint8)
        im[..., 0] = i  # frame index in the red channel
        im[:, : (i % w) + 1, 1] = 200
        out.append(im)
    return out


class _OpenRecorder:
    """Records every path opened or listed by the interpreter while active (sys.addaudithook)."""

    active = False
    paths: list = []
    installed = False

    @classmethod
    def install(cls):
        if not cls.installed:

            def hook(event, args):
                if (
                    cls.active
                    and event in ("open", "os.listdir", "os.scandir")
                    and args
                    and isinstance(args[0], (str, bytes, os.PathLike))
                ):
                    cls.paths.append(str(args[0]))

            sys.addaudithook(hook)
            cls.installed = True


def test_array_source_subsamples_evenly_and_bounded():
    src = ArrayTargetSource(_frames(100))
    got = src.load(10)
    idx = [int(im[0, 0, 0]) for im in got]
    assert len(got) == 10 and idx[0] == 0 and idx[-1] >= 90
    assert all(b > a for a, b in zip(idx, idx[1:]))
    assert max(np.diff(idx)) - min(np.diff(idx)) <= 12  # spread over the whole sequence
    assert len(src.load(0)) == 100


def test_labelled_items_are_refused():
    src = ArrayTargetSource([(_frames(1)[0], {"objects": []})])
    with pytest.raises(TargetSourceError, match="expected an unlabelled RGB uint8 array"):
        src.load()


def test_kitti_folder_source_reads_images_never_labels(tmp_path):
    (tmp_path / "image_2").mkdir()
    (tmp_path / "label_2").mkdir()
    frames = _frames(5)
    for i, im in enumerate(frames):
        cv2.imwrite(str(tmp_path / "image_2" / f"{i:06d}.png"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
        (tmp_path / "label_2" / f"{i:06d}.txt").write_text("Car 0 0 0 1 1 10 10 1 1 1 0 1.6 10 0\n")
    _OpenRecorder.install()
    _OpenRecorder.paths = []
    _OpenRecorder.active = True
    try:
        src = target_source_from_spec(str(tmp_path))
        got = src.load()
    finally:
        _OpenRecorder.active = False
    assert isinstance(src, ImageFolderSource)
    assert [int(g[0, 0, 0]) for g in got] == list(range(5))
    assert np.array_equal(got[3], frames[3])  # RGB order preserved
    assert any("image_2" in p for p in _OpenRecorder.paths)
    assert not any("label_2" in p for p in _OpenRecorder.paths)


def test_empty_or_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(TargetSourceError, match="does not exist"):
        ImageFolderSource(tmp_path / "nope")
    with pytest.raises(TargetSourceError, match="holds no images"):
        ImageFolderSource(tmp_path)


def test_sim_target_source_yields_only_pixels():
    src = SimTargetSource(env="drive", domain="target", seed=5, count=3, image_size=(160, 48))
    got = src.load()
    assert len(got) == 3 and all(isinstance(g, np.ndarray) and g.shape == (48, 160, 3) for g in got)


@pytest.mark.parametrize("storage,compressed", [("mcap", False), ("sqlite3", True)])
def test_bag_source_reads_frames_and_missing_topic_lists_topics(tmp_path, storage, compressed):
    from sim2sg_core.data.bags import BagTopicError, list_image_topics, write_image_bag

    frames = _frames(6)
    bag = tmp_path / f"bag_{storage}"
    write_image_bag(bag, frames, topic="/cam/front/image", storage=storage, compressed=compressed)
    (topic,) = list_image_topics(bag)  # '/cam/front/image' or its '/compressed' variant
    got = BagTargetSource(bag, topic).load()
    assert len(got) == 6
    if compressed:  # lossy or not, the frame order and content survive
        assert [int(round(g[..., 0].mean())) for g in got] == pytest.approx(list(range(6)), abs=2)
    else:
        assert all(np.array_equal(a, b) for a, b in zip(got, frames))
    with pytest.raises(BagTopicError) as err:
        BagTargetSource(bag, "/camera/missing").load()
    assert "/cam/front/image" in str(err.value) and "/camera/missing" in str(err.value)


def test_adapt_from_bags_with_missing_topic_fails_before_training(tmp_path):
    from sim2sg_core.adapt.sim2sg import adapt_from_bags
    from sim2sg_core.data.bags import BagTopicError, write_image_bag

    bag = tmp_path / "bag"
    write_image_bag(bag, _frames(2), topic="/front/image_raw", storage="mcap")
    with pytest.raises(BagTopicError) as err:
        adapt_from_bags(tmp_path / "init.pt", bag, "/rear/image_raw", tmp_path / "out.pt")
    assert "/front/image_raw" in str(err.value)
    assert not (tmp_path / "out.pt").exists()
