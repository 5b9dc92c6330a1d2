"""Labelled pools of an adaptation run and the labelled batches drawn from them.

Three pools feed the supervised half of a step: plain source renders (:func:`render_source_pool`), the
round's label-aligned renders and the round's pseudo-labelled target frames
(:func:`pseudo_label_graphs`). :func:`labelled_batch` mixes them; every draw comes from the step's one
``numpy`` generator, in a fixed order, so a resumed run replays the same batches.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from sim2sg_core.model.preprocess import hflip_sample
from sim2sg_core.scene_graph import SceneGraph, keep_objects


class LabelledPool:
    """Labelled (image, SceneGraph) pairs that training batches are drawn from."""

    def __init__(self, images: Sequence[np.ndarray] = (), graphs: Sequence[SceneGraph] = (), name: str = ""):
        if len(images) != len(graphs):
            raise ValueError(f"pool {name}: {len(images)} images but {len(graphs)} graphs")
        self.images, self.graphs, self.name = list(images), list(graphs), name

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, rng: np.random.Generator, n: int) -> tuple[list, list]:
        idx = rng.integers(0, len(self.images), size=n)
        return [self.images[i] for i in idx], [self.graphs[i] for i in idx]


def render_source_pool(simulator, count: int, start_index: int = 0) -> LabelledPool:
    """``count`` labelled samples of the simulator's (source) domain."""
    images, graphs = [], []
    for i in range(start_index, start_index + count):
        s = simulator.sample(i)
        images.append(s.image)
        graphs.append(s.graph)
    return LabelledPool(images, graphs, name=simulator.domain.name)


def pseudo_label_graphs(graphs: Sequence[SceneGraph], score_threshold: float) -> list[SceneGraph]:
    """Keep confident objects (and the predicted relationships among them) as pseudo labels."""
    return [keep_objects(g, [i for i, o in enumerate(g.objects) if o.score >= score_threshold]) for g in graphs]


def hflip_batch(images, graphs, predicates, rng: np.random.Generator) -> tuple[list, list]:
    """Each (image, graph) mirrored with probability 1/2 (left/right predicates swapped)."""
    out_i, out_g = [], []
    for im, g in zip(images, graphs):
        if rng.random() < 0.5:
            im, g = hflip_sample(im, g, predicates)
        out_i.append(im)
        out_g.append(g)
    return out_i, out_g


def labelled_batch(
    source: LabelledPool,
    others: Sequence[LabelledPool],
    source_fraction: float,
    batch_size: int,
    predicates,
    rng: np.random.Generator,
) -> tuple[list, list]:
    """``batch_size`` labelled (image, graph) pairs, randomly mirrored: ``source_fraction`` of them from
    ``source`` (all of them when ``others`` is empty), the rest split evenly over ``others``."""
    n_src = batch_size if not others else int(round(batch_size * source_fraction))
    imgs, graphs = source.sample(rng, n_src) if n_src else ([], [])
    rest = batch_size - n_src
    for k, pool in enumerate(others):
        n = rest // len(others) + (1 if k < rest % len(others) else 0)
        if n:
            i2, g2 = pool.sample(rng, n)
            imgs, graphs = imgs + i2, graphs + g2
    return hflip_batch(imgs, graphs, predicates, rng)


def class_counts(graphs: Iterable[SceneGraph]) -> dict:
    """Objects per class name over ``graphs``."""
    counts: dict = {}
    for g in graphs:
        for o in g.objects:
            counts[o.class_name] = counts.get(o.class_name, 0) + 1
    return counts
