"""Torch datasets yielding ``(rgb uint8 numpy H×W×3, SceneGraph or None)`` from files.

The simulator's dataset is :class:`sim2sg_core.sim.dataset.SimDataset` (data and sim are independent
layers).

They return numpy images and plain SceneGraph labels (not tensors) so the model package owns the
preprocessing; use ``collate_samples`` (lists, no stacking) with a ``DataLoader``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np
from torch.utils.data import Dataset

from sim2sg_core.data.kitti import read_kitti
from sim2sg_core.scene_graph import SceneGraph


def collate_samples(batch):
    """DataLoader collate: ``(list of images, list of graphs)`` without stacking."""
    images, graphs = zip(*batch) if batch else ((), ())
    return list(images), list(graphs)


def _read_rgb(path: Union[str, Path]) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{path}: cannot read image (missing or not an image file)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class KittiDataset(Dataset):
    """A KITTI object-format folder (``image_2``, ``label_2``, ``calib``) as scene graphs.

    Labels are parsed eagerly (so bad files fail at construction, naming file and line); images
    are read lazily. See :func:`sim2sg_core.data.kitti.read_kitti`.
    """

    def __init__(
        self,
        root: Union[str, os.PathLike],
        class_map=None,
        vocab=None,
        check_image_size: bool = True,
        max_items: Optional[int] = None,
        camera_height_m: Optional[float] = None,
    ):
        self.root = Path(root)
        self.items: list[tuple[Path, SceneGraph]] = read_kitti(
            root,
            class_map,
            vocab,
            check_image_size=check_image_size,
            max_items=max_items,
            camera_height_m=camera_height_m,
        )
        self.vocab = vocab

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        path, graph = self.items[i]
        return _read_rgb(path), graph


__all__ = ["KittiDataset", "collate_samples"]
