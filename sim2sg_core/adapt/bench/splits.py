"""What one benchmark seed measures on: disjoint simulator seeds per data split, and a real camera's data
(unlabelled frames, calibration, a labelled folder) with its camera at the render size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sim2sg_core.adapt.targets import target_source_from_spec
from sim2sg_core.data.calibration import load_camera
from sim2sg_core.data.datasets import KittiDataset
from sim2sg_core.sim import load_environment

#: Simulator seeds of the data splits, offset by ``SEED_STRIDE`` per bench seed (disjoint simulator
#: streams): labelled training images, unlabelled target images, and two labelled evaluation splits:
#: ``val`` (the quick profile; settings may be chosen on it) and ``test`` (the full profile's report).
TRAIN_SEED, TARGET_SEED = 100, 200
EVAL_SEEDS = {"val": 300, "test": 400}
SEED_STRIDE = 1000


def split_seeds(bench_seed: int) -> dict[str, int]:
    """The simulator seed of every data split of one bench seed (``train``, ``target``, ``val``, ``test``)."""
    if not 0 <= int(bench_seed) < 10**6:
        raise ValueError(f"bench seed must be in [0, 1e6), got {bench_seed}")
    off = SEED_STRIDE * int(bench_seed)
    return {"train": TRAIN_SEED + off, "target": TARGET_SEED + off, **{name: s + off for name, s in EVAL_SEEDS.items()}}


@dataclass
class RealData:
    """A real camera instead of a simulated target: unlabelled frames to adapt on (image folder or
    rosbag2 bags), the camera's calibration, and a labelled KITTI-layout folder used only to measure."""

    target: str
    eval_data: str
    #: camera_info YAML (ROS camera_calibration format) or KITTI calib file; empty = a
    #: ``camera_info.yaml`` beside or above the target folder.
    camera_info: str = ""
    #: Image topic when ``target`` is a bag (None = the only image topic).
    topic: Optional[str] = None

    def resolve_camera_info(self) -> str:
        if self.camera_info:
            if not Path(self.camera_info).is_file():
                raise FileNotFoundError(f"camera info file {self.camera_info} does not exist")
            return self.camera_info
        t = Path(self.target)
        for d in (t, t.parent):
            if (d / "camera_info.yaml").is_file():
                return str(d / "camera_info.yaml")
        raise FileNotFoundError(
            f"no --camera-info given and no camera_info.yaml beside {self.target}: the real "
            "camera's intrinsics are needed to render through it"
        )

    @property
    def name(self) -> str:
        return "real_" + (Path(self.target).resolve().name or "target")


def vocab_of(env: str):
    return load_environment(env).vocab


def domain_name(profile, name: str) -> str:
    """The profile's simulator domain for a method's symbolic labelled domain."""
    return {"source": profile.source_domain, "randomized": profile.randomized_domain}.get(name, name)


#: Mount height (m) assumed for a real camera whose profile does not state one (a car's roof camera).
DEFAULT_REAL_CAMERA_HEIGHT = 1.5


def real_camera(profile, real: RealData, size):
    """The real camera (calibration + the profile's mount pose) at the render size."""
    height = profile.camera_height if profile.camera_height is not None else DEFAULT_REAL_CAMERA_HEIGHT
    return load_camera(real.camera_info, height_m=height, pitch=profile.camera_pitch, image_size=tuple(size))


def real_setup(profile, env: str, real: RealData, size):
    """(camera at the render size, target source, evaluation dataset) of a real target."""
    camera = real_camera(profile, real, size)
    target = target_source_from_spec(real.target, topic=real.topic, env=env)
    evalset = KittiDataset(
        real.eval_data, class_map=profile.eval_class_map or None, vocab=vocab_of(env), camera_height_m=camera.height_m
    )
    return camera, target, evalset
