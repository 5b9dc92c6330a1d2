"""Torch datasets over simulated samples, KITTI folders and unlabelled images / bags."""

from __future__ import annotations

import numpy as np
import pytest
from torch.utils.data import DataLoader

from sim2sg_core.data.datasets import KittiDataset, collate_samples
from sim2sg_core.data.kitti import write_kitti
from sim2sg_core.sim import Simulator
from sim2sg_core.sim.dataset import SimDataset


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


def test_kitti_dataset_reads_back_what_was_written(tmp_path):
    sim = Simulator("drive", "source", seed=1)
    samples = [sim.sample(i) for i in range(3)]
    write_kitti(tmp_path / "k", samples)
    kd = KittiDataset(tmp_path / "k")
    img, g = kd[1]
    np.testing.assert_array_equal(img, samples[1].image)
    assert g.triplets() == samples[1].graph.triplets()
