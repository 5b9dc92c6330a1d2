"""The target camera label alignment lifts pseudo-labels through and renders reconstructions with.

Intrinsics: the real camera's when known (``AdaptConfig.camera_info``: a camera_info YAML or KITTI calib,
else the target source's calibrated camera), scaled to the render size whose preprocessing matches a
target frame's (:func:`aligned_image_size`); else the simulator's camera. Pose order
(:func:`resolve_target_camera`): the config's ``camera_height`` / ``camera_pitch`` > the target source's
reported pose > the calibration's own pose (a KITTI P2 pitch) > the source mean pose; with
``label_alignment.camera_pose: estimated`` the source mean pose, which the adapter replaces every round.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from sim2sg_core.adapt.config import AdaptConfig
from sim2sg_core.data.calibration import calibration_kind, load_camera
from sim2sg_core.geometry import Camera
from sim2sg_core.model.preprocess import ResizeSpec


def calibrated_camera(
    camera_info: str, source_camera: Optional[Camera], mean_pose: tuple, first_frame: np.ndarray
) -> tuple[Optional[Camera], Optional[tuple]]:
    """(calibrated camera or None, its own (height, pitch) or None): ``camera_info`` (loaded at the size
    of ``first_frame`` with the source ``mean_pose``; a KITTI P2 keeps its own pitch) > ``source_camera``,
    the target source's camera (intrinsics only: its pose counts only as the source's reported pose)."""
    if camera_info:
        h0, p0 = mean_pose
        cam = load_camera(
            camera_info,
            height_m=h0,
            pitch=None if calibration_kind(camera_info) == "kitti" else p0,
            image_size=(int(first_frame.shape[1]), int(first_frame.shape[0])),
        )
        return cam, (cam.height_m, cam.pitch)
    return source_camera, None


def aligned_image_size(
    input_size: tuple[int, int], resize_mode: str, crop_bottom: float, calibrated: Optional[Camera]
) -> tuple[int, int]:
    """Size label-aligned scenes are rendered at. Without a calibrated camera: the model input. With one:
    the size whose preprocessing (crop + resize) matches a target frame's, i.e. the frame's content size
    inside the input (letterbox), rows added back for the cropped band."""
    if calibrated is None:
        return input_size
    g = ResizeSpec(input_size, resize_mode, crop_bottom).geometry((calibrated.width, calibrated.height))
    cw, ch = g.content_size
    return int(cw), max(int(round(ch * calibrated.height / g.kept_height)), 1)


def resolve_target_camera(
    config: AdaptConfig,
    *,
    simulator_camera: Camera,
    mean_pose: tuple,
    calibrated: Optional[Camera],
    calibrated_pose: Optional[tuple],
    reported_pose: Optional[tuple],
    image_size: tuple[int, int],
) -> Camera:
    """The target camera: ``calibrated`` scaled to ``image_size`` (else ``simulator_camera``) at the pose
    the module docstring orders."""
    if config.label_alignment.camera_pose == "estimated":
        height, pitch = mean_pose  # a start only: re-estimated every round
    else:
        if reported_pose is not None:
            height, pitch = reported_pose
        elif calibrated_pose is not None:
            height, pitch = calibrated_pose
        else:
            height, pitch = mean_pose
        if config.camera_height is not None:
            height = config.camera_height
        if config.camera_pitch is not None:
            pitch = config.camera_pitch
    base = simulator_camera if calibrated is None else calibrated.scaled(*image_size)
    return base.with_pose(float(height), float(pitch))
