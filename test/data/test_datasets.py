"""Torch datasets over simulated samples, KITTI folders and unlabelled images / bags."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from torch.utils.data import DataLoader

from sim2sg_core.data.bags import write_image_bag
from sim2sg_core.data.datasets import ImageListDataset, KittiDataset, SimDataset, collate_samples
from sim2sg_core.data.kitti import write_kitti
from sim2sg_core.sim import Simulator


def test_sim_dataset_matches_the_simulator_and_loads_in_workers():
    ds = SimDataset("drive", "target", seed=4, length=6, image_size=(320, 96))
    sim = Simulator("drive", "target", seed=4, image_size=(320, 96))
    img, g = ds[2]
    s = sim.sample(2)
    assert img.tobytes() == s.image.tobytes() and g.to_dict() == s.graph.to_dict()
    assert len(ds) == 6 and ds.vocab == sim.vocab
    with pytest.raises(IndexError):
        ds[6]
    loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate_samples)
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [3, 3]
    assert batches[0][0][2].tobytes() == s.image.tobytes()


def test_sim_dataset_with_a_refitted_content():
    from sim2sg_core.sim import load_domain
    content = load_domain("drive", "target2").content
    img, g = SimDataset("drive", "source", seed=0, length=2, content=content)[0]
    sim = Simulator("drive", "source", seed=0, content=content)
    assert g.to_dict() == sim.sample(0).graph.to_dict()


def test_kitti_and_image_list_datasets(tmp_path):
    sim = Simulator("drive", "source", seed=1)
    samples = [sim.sample(i) for i in range(3)]
    write_kitti(tmp_path / "k", samples)
    kd = KittiDataset(tmp_path / "k")
    img, g = kd[1]
    np.testing.assert_array_equal(img, samples[1].image)
    assert g.triplets() == samples[1].graph.triplets()
    folder = ImageListDataset(tmp_path / "k" / "image_2")
    assert len(folder) == 3 and folder[0][1] is None
    np.testing.assert_array_equal(folder[2][0], samples[2].image)
    bag = write_image_bag(tmp_path / "bag", samples, start_ns=1_000_000_000, encoding="bgr8")
    fromb = ImageListDataset(bag, topic="/camera/image_raw", max_frames=2)
    assert len(fromb) == 2 and fromb.stamps == [1_000_000_000, 1_100_000_000]
    np.testing.assert_array_equal(fromb[1][0], samples[1].image)
    with pytest.raises(FileNotFoundError, match="no such image file"):
        ImageListDataset(tmp_path / "missing")
    cv2.imwrite(str(tmp_path / "broken.png"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "broken.png").write_bytes(b"xx")
    with pytest.raises(ValueError, match="cannot read image"):
        ImageListDataset([tmp_path / "broken.png"])[0]
