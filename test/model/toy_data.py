"""Hand-made toy scenes for model/eval/train tests (independent of the simulator).

A pinhole camera over a flat ground sees coloured boxes; labels follow the same geometry and the
shared relationship rule, so a model that learns them learns the real task in miniature.
"""

from __future__ import annotations

import numpy as np

from sim2sg_core.scene_graph import SceneGraph, SceneObject, Vocabulary, derive_relationships

VOCAB = Vocabulary(classes=("car", "person", "sign"), subject_classes=("car", "person"))
COLOURS = {"car": (220, 40, 40), "person": (40, 60, 230), "sign": (40, 200, 60)}
SIZES = {"car": (1.5, 1.8), "person": (1.8, 0.6), "sign": (2.2, 0.5)}  # height, width (m)


def toy_sample(seed: int, width: int = 160, height: int = 64, n_objects=(2, 4)):
    rng = np.random.default_rng(seed)
    f, cx, horizon, cam_h = width / 2.0, width / 2.0, height * 0.3, 1.5
    img = np.empty((height, width, 3), np.uint8)
    img[:] = np.linspace(90, 150, height, dtype=np.uint8)[:, None, None]
    img = np.clip(img.astype(int) + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
    objs = []
    for _ in range(int(rng.integers(n_objects[0], n_objects[1] + 1))):
        name = str(rng.choice(VOCAB.classes))
        for _try in range(20):
            z = float(rng.uniform(4.0, 16.0))
            x = float(rng.uniform(-0.6, 0.6) * z)
            h_m, w_m = SIZES[name]
            bottom = horizon + f * cam_h / z
            bh, bw = f * h_m / z, f * w_m / z
            u = cx + f * x / z
            box = (u - bw / 2, bottom - bh, u + bw / 2, bottom)
            if box[0] < 0 or box[2] > width or box[1] < 0 or box[3] > height:
                continue
            if any(_iou(box, o.box) > 0.2 for o in objs):
                continue
            objs.append(SceneObject(name, VOCAB.class_id(name), box, 1.0, position=(x, cam_h, z)))
            break
    for o in sorted(objs, key=lambda o: -o.position[2]):  # far first: near objects occlude
        x1, y1, x2, y2 = (int(round(v)) for v in o.box)
        img[y1:y2, x1:x2] = COLOURS[o.class_name]
    graph = SceneGraph(
        objects=objs, relationships=derive_relationships(objs, VOCAB), image_width=width, image_height=height
    )
    return img, graph.validate()


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


class ToyDataset:
    """torch-style dataset of toy scenes: ``ds[i] -> (rgb, SceneGraph)``."""

    def __init__(self, n: int, seed: int = 0, **kw):
        self.items = [toy_sample(seed * 100003 + i, **kw) for i in range(n)]
        self.vocab = VOCAB

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def tiny_config(**train_overrides):
    from sim2sg_core.train.config import ExperimentConfig, ModelConfig, TrainConfig

    model = ModelConfig(
        encoder_channels=(8, 16, 32, 32, 32),
        feature_channels=32,
        head_channels=32,
        input_width=160,
        input_height=64,
        relation_hidden=64,
        relation_roi_size=3,
    )
    train = TrainConfig(
        steps=150,
        batch_size=8,
        lr=3e-3,
        warmup_steps=10,
        num_workers=0,
        hflip=False,
        checkpoint_every=0,
        log_every=10,
        train_images=8,
    )
    for k, v in train_overrides.items():
        setattr(train, k, v)
    return ExperimentConfig(model=model, train=train)
