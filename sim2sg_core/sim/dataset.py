"""The simulator as a torch Dataset yielding ``(rgb uint8 numpy H×W×3, SceneGraph)``.

Like the file datasets (:mod:`sim2sg_core.data.datasets`, whose ``collate_samples`` batches both) it
returns numpy images and plain SceneGraph labels, so the model package owns the preprocessing.
"""

from __future__ import annotations

from typing import Optional

from torch.utils.data import Dataset

from sim2sg_core.sim import Simulator


class SimDataset(Dataset):
    """Simulated samples rendered on the fly; item ``i`` is ``Simulator(...).sample(i)``.

    The simulator is built lazily in each DataLoader worker, so the dataset pickles cheaply.
    """

    def __init__(
        self,
        env="drive",
        domain="source",
        seed: int = 0,
        length: int = 1000,
        image_size: Optional[tuple[int, int]] = None,
        content=None,
        offset: int = 0,
        camera=None,
        camera_pose_from_camera: bool = False,
    ):
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        self.env, self.domain, self.seed, self.length = env, domain, int(seed), int(length)
        self.image_size, self.content, self.offset = image_size, content, int(offset)
        self.camera, self.camera_pose_from_camera = camera, bool(camera_pose_from_camera)  # a real camera
        self._sim = None

    @property
    def simulator(self):
        if self._sim is None:
            self._sim = Simulator(
                self.env,
                self.domain,
                seed=self.seed,
                image_size=self.image_size,
                content=self.content,
                camera=self.camera,
                camera_pose_from_camera=self.camera_pose_from_camera,
            )
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


__all__ = ["PoolDataset", "SimDataset", "render_split"]


class PoolDataset(Dataset):
    """Pre-rendered (rgb, SceneGraph) pairs (rendering once, training many epochs)."""

    def __init__(self, images, graphs):
        self.images, self.graphs = list(images), list(graphs)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.graphs[i]


def render_split(env: str, domain: str, seed: int, count: int, image_size, camera=None) -> PoolDataset:
    """``count`` labelled images of a simulator domain, rendered through ``camera`` if given."""
    kw = {"camera": camera} if camera is not None else {}
    sim = Simulator(env=env, domain=domain, seed=seed, image_size=tuple(image_size) if image_size else None, **kw)
    images, graphs = [], []
    for i in range(count):
        s = sim.sample(i)
        images.append(s.image)
        graphs.append(s.graph)
    return PoolDataset(images, graphs)
