"""Torch datasets yielding ``(rgb uint8 numpy H×W×3, SceneGraph or None)``.

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

from sim2sg_core.scene_graph import SceneGraph



def collate_samples(batch):
    """DataLoader collate: ``(list of images, list of graphs)`` without stacking."""
    images, graphs = zip(*batch) if batch else ((), ())
    return list(images), list(graphs)


class SimDataset(Dataset):
    """Simulated samples rendered on the fly; item ``i`` is ``Simulator(...).sample(i)``.

    The simulator is built lazily in each DataLoader worker, so the dataset pickles cheaply.
    """

    def __init__(self, env="drive", domain="source", seed: int = 0, length: int = 1000,
                 image_size: Optional[tuple[int, int]] = None, content=None, offset: int = 0,
                 camera=None, camera_pose_from_camera: bool = False):
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        self.env, self.domain, self.seed, self.length = env, domain, int(seed), int(length)
        self.image_size, self.content, self.offset = image_size, content, int(offset)
        self.camera, self.camera_pose_from_camera = camera, bool(camera_pose_from_camera)   # a real camera
        self._sim = None

    @property
    def simulator(self):
        if self._sim is None:
            from sim2sg_core.sim import Simulator
            self._sim = Simulator(self.env, self.domain, seed=self.seed, image_size=self.image_size,
                                  content=self.content, camera=self.camera,
                                  camera_pose_from_camera=self.camera_pose_from_camera)
        return self._sim

    @property
    def vocab(self):
        return self.simulator.vocab

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_sim"] = None
        return d

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        if not -self.length <= i < self.length:
            raise IndexError(f"index {i} out of range for SimDataset of length {self.length}")
        s = self.simulator.sample(self.offset + (i % self.length))
        return s.image, s.graph


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

    def __init__(self, root: Union[str, os.PathLike], class_map=None, vocab=None, check_image_size: bool = True,
                 max_items: Optional[int] = None, camera_height_m: Optional[float] = None):
        from sim2sg_core.data.kitti import read_kitti
        self.root = Path(root)
        self.items: list[tuple[Path, SceneGraph]] = read_kitti(root, class_map, vocab,
                                                                check_image_size=check_image_size,
                                                                max_items=max_items,
                                                                camera_height_m=camera_height_m)
        self.vocab = vocab

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        path, graph = self.items[i]
        return _read_rgb(path), graph


__all__ = ["SimDataset", "KittiDataset", "collate_samples"]
