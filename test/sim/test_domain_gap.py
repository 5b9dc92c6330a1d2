"""Source and target differ measurably in appearance and in content statistics."""

from __future__ import annotations

import numpy as np
import pytest

from sim2sg_core.sim import Simulator
from sim2sg_core.sim.stats import domain_gap, summarize


def _summary(env, domain, seed, n=60):
    sim = Simulator(env, domain, seed=seed)
    return summarize([sim.sample(i) for i in range(n)])


@pytest.mark.parametrize("env", ["drive", "clevr", "dining"])
def test_source_and_target_differ_in_appearance_and_content(env):
    s1, s2 = _summary(env, "source", 0), _summary(env, "source", 1)
    t = _summary(env, "target", 0)
    same = domain_gap(s1, s2)
    gap = domain_gap(s1, t)
    # appearance: the colour histograms are much further apart than two source draws
    assert gap["colour_hist_bhattacharyya"] > 3 * same["colour_hist_bhattacharyya"] + 0.02
    # content: camera and object statistics
    h0, h1 = gap["camera_height"]
    assert abs(h0 - h1) > 0.1 * h0 or abs(s1["camera_pitch"] - t["camera_pitch"]) > 0.05
    # at least one class's count per image differs far beyond sampling noise (two-sample z)
    assert max(gap["count_z"].values()) > 3.5
    assert 0.0 <= gap["count_dist_tv"] <= 1.0


def test_target2_is_shifted_differently_from_target():
    s = _summary("drive", "source", 0)
    t = _summary("drive", "target", 0)
    t2 = _summary("drive", "target2", 0)
    assert domain_gap(t, t2)["colour_hist_bhattacharyya"] > 0.05
    # target has more cars than source, target2 fewer
    assert t["class_means"]["car"] > s["class_means"]["car"] > t2["class_means"]["car"]
    # blur/haze: target2 is the least sharp
    assert t2["sharpness"] < s["sharpness"]


def test_objects_are_learnable_sizes_and_counts():
    """Labels stay within the task's budget: ~3-10 objects per image, boxes >= 12 px tall."""
    for domain in ("source", "target"):
        sim = Simulator("drive", domain, seed=5)
        counts, heights = [], []
        for i in range(30):
            g = sim.sample(i).graph
            counts.append(len(g.objects))
            heights += [o.box[3] - o.box[1] for o in g.objects]
        assert 3 <= np.mean(counts) <= 10
        assert min(heights) >= 12
