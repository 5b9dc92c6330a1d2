"""Deterministic SceneGraphs of any size for message tests (imported by path, not collected)."""

from __future__ import annotations

import random

from sim2sg_core.scene_graph import PREDICATES, Relationship, SceneGraph, SceneObject, Vocabulary

VOCAB = Vocabulary(classes=("car", "pedestrian", "vegetation", "house"), subject_classes=("car",))


def make_graph(n_objects: int, n_relationships: int, seed: int = 0) -> SceneGraph:
    rng = random.Random(seed)
    objects = []
    for i in range(n_objects):
        cid = rng.randrange(len(VOCAB.classes))
        x0, y0 = rng.uniform(0, 600), rng.uniform(0, 150)
        pos = (rng.uniform(-10, 10), 1.6, rng.uniform(3, 60)) if i % 3 else None
        objects.append(
            SceneObject(
                class_name=VOCAB.classes[cid],
                class_id=cid,
                box=(x0, y0, x0 + rng.uniform(1, 40), y0 + rng.uniform(1, 40)),
                score=rng.random(),
                position=pos,
            )
        )
    pairs = [(s, o) for s in range(n_objects) for o in range(n_objects) if s != o]
    rels = []
    for s, o in rng.sample(pairs, n_relationships):
        pid = rng.randrange(len(PREDICATES))
        rels.append(Relationship(s, o, PREDICATES[pid], pid, rng.random()))
    return SceneGraph(
        objects=objects, relationships=rels, image_width=640, image_height=192, model_id=f"test@{seed:08x}", vocab=VOCAB
    )
