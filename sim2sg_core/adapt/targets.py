"""Unlabelled target-image sources for adaptation.

Adaptation must never read target labels, and this module is where that is enforced structurally:
every source yields bare RGB ``uint8`` arrays (H×W×3) and nothing else. The simulator source drops
the label graph inside the generator; the KITTI source only ever lists ``image_2/`` (it never opens
``label_2/``); the bag source reads one image topic through :mod:`sim2sg_core.data.bags`.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence, Union

import cv2
import numpy as np

from sim2sg_core.data.bags import camera_info_topic, read_bag_images, read_camera_info
from sim2sg_core.data.calibration import CalibrationError, camera_from_camera_info, camera_from_camera_info_yaml
from sim2sg_core.geometry import Camera
from sim2sg_core.sim import Simulator, load_domain, load_environment

PathLike = Union[str, os.PathLike]
#: The one image-folder reader's file types (everything OpenCV's imread reads here).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")


class TargetSourceError(ValueError):
    """A target source that cannot deliver images (missing folder, empty bag, ...)."""


class TargetSource(ABC):
    """An iterable of unlabelled target images (RGB uint8 numpy, H×W×3)."""

    #: Short human-readable description for logs and checkpoints.
    description: str = "target"
    #: (height m, pitch rad) of the camera that took the images when the source knows it
    #: (calibration, not labels); None = unknown.
    camera_pose: Optional[tuple] = None
    #: The calibrated camera (a :class:`sim2sg_core.geometry.Camera`, intrinsics at its image size) when
    #: the source knows it (a bag's CameraInfo, a ``camera_info.yaml`` beside an image folder);
    #: None = unknown. Only its intrinsics are calibration: its height/pitch are placeholders
    #: unless ``camera_pose`` is set too.
    camera: Optional[Camera] = None

    @abstractmethod
    def iter_images(self) -> Iterator[np.ndarray]:
        """Yield RGB uint8 images, in a deterministic order."""

    def load(self, max_images: int = 0) -> list[np.ndarray]:
        """All images, or at most ``max_images`` spread evenly over the source (memory-bounded)."""
        kept: list[np.ndarray] = []
        stride, seen = 1, 0
        for img in self.iter_images():
            img = _check_image(img, self.description, seen)
            if seen % stride == 0:
                kept.append(img)
                if max_images and len(kept) >= 2 * max_images:
                    kept = kept[::2]  # online decimation: keep the spread even, memory bounded
                    stride *= 2
            seen += 1
        if not kept:
            raise TargetSourceError(f"target source {self.description} yielded no images")
        if max_images and len(kept) > max_images:
            idx = np.linspace(0, len(kept) - 1, max_images).round().astype(int)
            kept = [kept[i] for i in idx]
        return kept

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.iter_images()


def _check_image(img, where: str, index: int) -> np.ndarray:
    if not isinstance(img, np.ndarray):
        # A tuple here would mean a labelled sample leaked into adaptation: refuse it loudly.
        raise TargetSourceError(
            f"target source {where} item {index} is a {type(img).__name__}, expected an unlabelled RGB uint8 array"
        )
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise TargetSourceError(
            f"target source {where} item {index} has dtype {img.dtype} shape {img.shape}; expected RGB uint8 H×W×3"
        )
    return img


class ArrayTargetSource(TargetSource):
    """Images already in memory (e.g. frames buffered by a ROS node)."""

    def __init__(self, images: Sequence[np.ndarray], description: str = "in-memory images"):
        self._images = list(images)
        self.description = description

    def iter_images(self) -> Iterator[np.ndarray]:
        return iter(self._images)


class SimTargetSource(TargetSource):
    """Images of a simulator domain (e.g. ``target``); the label graph is discarded on the spot."""

    def __init__(
        self,
        *,
        env: str,
        domain: str = "target",
        seed: int = 1000,
        count: int = 200,
        image_size: Optional[Sequence[int]] = None,
        start_index: int = 0,
    ):
        self.env, self.domain, self.seed, self.count = env, domain, int(seed), int(count)
        self.image_size = (int(image_size[0]), int(image_size[1])) if image_size else None
        self.start_index = int(start_index)
        self.description = f"sim:{env}/{domain}/seed{seed}[{start_index}:{start_index + count}]"
        self.camera_pose = load_domain(load_environment(env), domain).content.camera.mean_pose  # calibration

    def iter_images(self) -> Iterator[np.ndarray]:
        sim = Simulator(env=self.env, domain=self.domain, seed=self.seed, image_size=self.image_size)
        for i in range(self.start_index, self.start_index + self.count):
            yield sim.sample(i).image  # only the pixels leave this function


#: Pose given to cameras built from calibration files whose mount is unknown (placeholders; see
#: ``TargetSource.camera``).
PLACEHOLDER_POSE = (1.65, 0.0)
CAMERA_INFO_FILE = "camera_info.yaml"


def find_camera_info(folder: PathLike) -> Optional[Path]:
    """``camera_info.yaml`` in ``folder`` or its parent (the first found), else None."""
    folder = Path(folder)
    for d in (folder, folder.parent):
        if (d / CAMERA_INFO_FILE).is_file():
            return d / CAMERA_INFO_FILE
    return None


class ImageFolderSource(TargetSource):
    """Every image file in a folder (sorted by name); for a KITTI folder, its ``image_2/``.

    A KITTI-format folder is recognised by its ``image_2`` sub-folder; ``label_2`` is never opened —
    the labels are for evaluation only. A ``camera_info.yaml`` (ROS camera_calibration format) in
    the image folder, the given folder or its parent becomes :attr:`camera`.
    """

    def __init__(self, folder: PathLike):
        folder = Path(folder)
        if not folder.is_dir():
            raise TargetSourceError(f"target image folder {folder} does not exist")
        self.image_dir = folder / "image_2" if (folder / "image_2").is_dir() else folder
        self.files = sorted(p for p in self.image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise TargetSourceError(
                f"target image folder {self.image_dir} holds no images ({', '.join(IMAGE_SUFFIXES)})"
            )
        self.description = f"folder:{self.image_dir}"
        self.camera_info_path = find_camera_info(self.image_dir) or find_camera_info(folder)
        self.camera = None
        if self.camera_info_path is not None:
            self.camera = camera_from_camera_info_yaml(
                self.camera_info_path, height_m=PLACEHOLDER_POSE[0], pitch=PLACEHOLDER_POSE[1]
            )

    def iter_images(self) -> Iterator[np.ndarray]:
        for p in self.files:
            bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if bgr is None:
                raise TargetSourceError(f"target image {p} cannot be decoded")
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


#: KITTI folders are image folders for adaptation purposes (labels ignored).
KittiTargetSource = ImageFolderSource


class BagTargetSource(TargetSource):
    """Frames of one image topic (sensor_msgs/Image or CompressedImage) in rosbag2 bags.

    A topic absent from the bags raises :class:`sim2sg_core.data.bags.BagTopicError`, which lists the
    image topics present.
    """

    def __init__(self, paths: Union[PathLike, Iterable[PathLike]], topic: str):
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise TargetSourceError("BagTargetSource needs at least one bag path")
        for p in self.paths:
            if not p.exists():
                raise TargetSourceError(f"bag {p} does not exist")
        self.topic = topic
        self.description = f"bag:{','.join(str(p) for p in self.paths)}#{topic}"
        self._camera: Optional[tuple] = None  # (camera,) once read

    @property
    def camera(self):
        """The first CameraInfo on the image topic's ``camera_info`` topic as a Camera, or None
        (read on first use; its pose is a placeholder)."""
        if self._camera is None:
            info = read_camera_info(self.paths, camera_info_topic(self.topic))
            cam = None
            if info is not None:
                try:
                    cam = camera_from_camera_info(info, height_m=PLACEHOLDER_POSE[0], pitch=PLACEHOLDER_POSE[1])
                except CalibrationError as e:  # e.g. an uncalibrated driver's all-zero K
                    logging.getLogger(__name__).warning("ignoring the CameraInfo in %s: %s", self.description, e)
            self._camera = (cam,)
        return self._camera[0]

    def iter_images(self) -> Iterator[np.ndarray]:
        for _stamp, rgb in read_bag_images(self.paths, self.topic):
            yield rgb


def target_source_from_spec(
    spec: str,
    *,
    topic: Optional[str] = None,
    env: str = "drive",
    seed: int = 1000,
    count: int = 200,
    image_size: Optional[Sequence[int]] = None,
) -> TargetSource:
    """CLI helper: ``sim:<domain>`` | a folder (KITTI or plain images) | bag path(s) (comma-separated)."""
    if spec.startswith("sim:"):
        return SimTargetSource(env=env, domain=spec[4:] or "target", seed=seed, count=count, image_size=image_size)
    parts = [Path(s) for s in spec.split(",") if s]
    missing = [str(p) for p in parts if not p.exists()]
    if not parts or missing:
        raise TargetSourceError(
            f"target {', '.join(missing) or repr(spec)} does not exist (expected sim:<domain>, "
            "an image/KITTI folder, or rosbag2 bag path(s))"
        )
    if len(parts) == 1 and parts[0].is_dir() and not _looks_like_bag_dir(parts[0]):
        return ImageFolderSource(parts[0])
    if topic is None:
        raise TargetSourceError(f"target {spec} looks like rosbag2 bag(s); pass --topic")
    return BagTargetSource(parts, topic)


def _looks_like_bag_dir(p: Path) -> bool:
    return (p / "metadata.yaml").is_file() or any(p.glob("*.mcap")) or any(p.glob("*.db3"))
