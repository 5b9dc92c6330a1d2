"""Estimate the target camera's mounting pose (height, pitch) from pseudo-labels alone.

Label alignment lifts predicted boxes to 3-D through the target camera, so it needs the camera's
height above the ground and its downward pitch. A robot's calibration usually gives them; when it
does not (or to test how much the method leans on it), they can be estimated from the predictions:
objects of a known class have a known typical size, so the right pose is the one under which the
confident boxes, lifted onto the ground (:func:`sim2sg_core.sim.reconstruct.lift_box`), come out at
their class's typical size. The pitch moves the horizon and the height sets the overall scale, so
the fit is a coarse-to-fine grid search for the pose whose log size ratios have the smallest
median and spread.

Only boxes that are not cut by the image border are used (their height is their object's). Object
size and camera height trade off against each other: on a target whose objects are all larger
than the simulator's, the estimated height comes out lower by the same factor. The pitch does not
suffer from that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from sim2sg_core.geometry import Camera
from sim2sg_core.scene_graph import SceneGraph
from sim2sg_core.sim.domains import load_environment
from sim2sg_core.sim.reconstruct import SCALE_LIMITS, default_yaws, lift_box

#: Search window around the starting pose: height factor range and pitch half-width (rad).
HEIGHT_FACTORS = (0.5, 2.0)
PITCH_HALF_WIDTH = 0.2
LOG_MISFIT = math.log(4.0)


@dataclass(frozen=True)
class PoseEstimate:
    height_m: float
    pitch: float
    #: Boxes the fit used, and the root-mean-square log size ratio at the estimate.
    objects: int
    rms_log_scale: float


def _usable_boxes(
    graphs: Sequence[SceneGraph], camera: Camera, classes, score_threshold: float, max_objects: int, seed: int
) -> list[tuple[tuple, str]]:
    out = []
    for g in graphs:
        sx = camera.width / g.image_width if g.image_width else 1.0
        sy = camera.height / g.image_height if g.image_height else 1.0
        for o in g.objects:
            if o.score < score_threshold or o.class_name not in classes:
                continue
            x0, y0, x1, y1 = o.box[0] * sx, o.box[1] * sy, o.box[2] * sx, o.box[3] * sy
            if x0 <= 1 or y0 <= 1 or x1 >= camera.width - 1 or y1 >= camera.height - 1 or y1 - y0 < 4:
                continue  # cut by the border: its height is not the object's
            out.append(((x0, y0, x1, y1), o.class_name))
    if len(out) > max_objects:
        rng = np.random.default_rng(seed)
        out = [out[i] for i in sorted(rng.choice(len(out), max_objects, replace=False))]
    return out


def _cost(boxes, camera: Camera, env, yaws: dict) -> float:
    """Squared median + squared median absolute deviation of the log size ratios (robust to the odd
    wrong class or unusual object); a box that cannot be lifted, or whose size hits the lifting
    limits, counts as a 4x misfit."""
    logs = []
    for box, name in boxes:
        spec = lift_box(box, name, camera, env, yaw=yaws.get(name, 0.0))
        if spec is None:
            logs.append(LOG_MISFIT)  # cannot stand on the ground under this pose: a bad fit
            continue
        ratio = max(spec.size[0], 1e-6) / env.prior(name).size[0]
        if not SCALE_LIMITS[0] * 1.001 < ratio < SCALE_LIMITS[1] * 0.999:
            logs.append(math.copysign(LOG_MISFIT, math.log(ratio)))
        else:
            logs.append(math.log(ratio))
    if not logs:
        return math.inf
    v = np.asarray(logs)
    med = float(np.median(v))
    return med**2 + float(np.median(np.abs(v - med))) ** 2


def estimate_camera_pose(
    graphs: Sequence[SceneGraph],
    camera: Camera,
    env,
    *,
    score_threshold: float = 0.5,
    min_objects: int = 8,
    max_objects: int = 40,
    classes: Optional[Sequence[str]] = None,
    yaws: Optional[dict] = None,
    seed: int = 0,
) -> Optional[PoseEstimate]:
    """The (height, pitch) under which the confident boxes of ``graphs`` lift to their classes' typical
    sizes, searched around ``camera``'s own pose; None when fewer than ``min_objects`` usable boxes.

    ``camera``: the target camera's intrinsics (its pose is the starting point); ``env``: the
    simulator environment (class sizes); ``yaws``: typical yaw per class (default: the source's).
    """
    env = load_environment(env)
    yaws = yaws if yaws is not None else default_yaws(env)
    names = set(classes) if classes is not None else set(env.classes)
    boxes = _usable_boxes(graphs, camera, names, score_threshold, max_objects, seed)
    if len(boxes) < max(1, int(min_objects)):
        return None
    h0, p0 = float(camera.height_m), float(camera.pitch)
    lo, hi = math.log(HEIGHT_FACTORS[0]), math.log(HEIGHT_FACTORS[1])
    log_h, pitch, best_p = math.log(h0), p0, p0
    span_h, span_p = (hi - lo) / 2, PITCH_HALF_WIDTH
    centre_h = math.log(h0) + (lo + hi) / 2
    best = math.inf
    for _level in range(3):  # 9 x 9 grid, then twice around the best at 1/4 the span
        for lh in np.linspace(centre_h - span_h, centre_h + span_h, 9):
            for p in np.linspace(pitch - span_p, pitch + span_p, 9):
                c = _cost(boxes, camera.with_pose(math.exp(lh), float(p)), env, yaws)
                if c < best:
                    best, log_h, best_p = c, float(lh), float(p)
        centre_h, pitch = log_h, best_p
        span_h, span_p = span_h / 4, span_p / 4
    return PoseEstimate(height_m=math.exp(log_h), pitch=pitch, objects=len(boxes), rms_log_scale=math.sqrt(best))


__all__ = ["PoseEstimate", "estimate_camera_pose"]
