"""A calibrated camera drives the simulator: off-centre principal point, 16:9, other intrinsics.

Labels must match an independent pinhole projection through the *given* intrinsics (raster boxes
are the projected extent grown by ``RASTER_PAD`` and snapped to whole pixels: within 1 px).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim2sg_core.sim import Camera, ObjectSpec, SceneDescription, Simulator
from sim2sg_core.sim.generate import base_camera
from sim2sg_core.sim.render import RASTER_PAD, object_geometry, template_for

#: nuScenes-like front camera (16:9, principal point right of and below the centre), 1.5 m, level
REAL = Camera(fx=1266.417, fy=1266.417, cx=816.267, cy=491.507, width=1600, height=900, height_m=1.5, pitch=0.0)
SMALL = (480, 270)


def _project(points: np.ndarray, fx, fy, cx, cy, pitch) -> np.ndarray:
    """Pinhole projection of level-frame points, written out here (not Camera.project)."""
    c, s = math.cos(pitch), math.sin(pitch)
    x, y, z = points[:, 0], c * points[:, 1] - s * points[:, 2], s * points[:, 1] + c * points[:, 2]
    return np.stack([fx * x / z + cx, fy * y / z + cy], axis=1)


def _extent(uv: np.ndarray) -> np.ndarray:
    return np.array([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()])


def _box_corners(obj: ObjectSpec) -> np.ndarray:
    """The 8 corners of the object's 3-D box (bottom centre, size h, w, l, KITTI yaw)."""
    h, w, length = obj.size
    px, py, pz = obj.position
    c, s = math.cos(obj.yaw), math.sin(obj.yaw)
    out = []
    for a in (-length / 2, length / 2):
        for b in (-w / 2, w / 2):
            for y in (0.0, -h):
                out.append((px + c * a + s * b, py + y, pz - s * a + c * b))
    return np.array(out)


def _render_one(sim: Simulator, camera: Camera, obj: ObjectSpec):
    scene = SceneDescription(camera=camera, objects=[obj], seed=5, env=sim.env.name)
    res = sim.render_full(scene)
    assert len(res.graph.objects) == 1, "the object must be labelled"
    return res, np.array(res.graph.objects[0].box)


def test_simulator_uses_the_given_camera_and_its_size():
    sim = Simulator("drive", "source", seed=0, camera=REAL.scaled(*SMALL))
    assert sim.image_size == SMALL
    assert (sim.camera.fx, sim.camera.cx, sim.camera.cy) == pytest.approx((REAL.fx * 0.3, REAL.cx * 0.3, REAL.cy * 0.3))
    s = sim.sample(0)
    assert s.image.shape == (270, 480, 3)
    cam = s.scene.camera
    assert (cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height) == pytest.approx(
        (sim.camera.fx, sim.camera.fy, sim.camera.cx, sim.camera.cy, 480, 270)
    )
    # the pose still comes from the domain's content distribution (drive/source: 1.65 m, 0.02 rad)
    assert (cam.height_m, cam.pitch) == pytest.approx(sim.content.camera.mean_pose)
    # ... unless the caller asks for the calibrated camera's pose as the mean
    own = Simulator("drive", "randomized", seed=0, camera=REAL, image_size=SMALL, camera_pose_from_camera=True)
    assert own.content.camera.mean_pose == pytest.approx((1.5, 0.0))
    rnd = Simulator("drive", "randomized", seed=0).content.camera
    assert own.content.camera.height.std == rnd.height.std  # the jitter is kept
    assert own.content.camera.height.max - 1.5 == pytest.approx(rnd.height.max - rnd.height.mean)
    poses = np.array([(own.scene(i).camera.height_m, own.scene(i).camera.pitch) for i in range(40)])
    assert abs(poses[:, 0].mean() - 1.5) < 0.1 and poses[:, 0].std() > 0.05  # DR jitter around the mount
    # both given: the camera is scaled to image_size (another aspect: the caller's choice)
    wide = Simulator("drive", "source", camera=REAL, image_size=(480, 144))
    assert wide.camera.fx == pytest.approx(REAL.fx * 0.3) and wide.camera.fy == pytest.approx(REAL.fy * 0.16)
    assert wide.sample(1).image.shape == (144, 480, 3)
    # with_content keeps the camera; no camera = the environment's from-fov camera, as before
    again = sim.with_content(sim.content)
    assert again.camera == sim.camera and again.sample(0).image.tobytes() == s.image.tobytes()
    plain = Simulator("drive", "source", seed=0)
    assert plain.camera == base_camera(plain.env, plain.image_size) and plain.calibrated_camera is None
    with pytest.raises(ValueError, match="needs a camera"):
        Simulator("drive", "source", camera_pose_from_camera=True)


@pytest.mark.parametrize(
    "x, z, yaw, pitch",
    [(0.0, 20.0, -math.pi / 2, 0.0), (-3.5, 14.0, math.pi / 2, 0.0), (2.8, 9.0, -1.2, 0.03), (-6.5, 25.0, 0.4, -0.02)],
)
def test_labelled_box_is_the_projection_through_the_given_intrinsics(x, z, yaw, pitch):
    cam = REAL.scaled(*SMALL).with_pose(1.5, pitch)
    sim = Simulator("drive", "source", seed=0, camera=cam)
    prior = sim.env.prior("car")
    obj = ObjectSpec("car", (x, cam.height_m, z), tuple(prior.size), yaw=yaw)
    _, box = _render_one(sim, cam, obj)
    world, _ = object_geometry(template_for(prior), obj)  # the car's mesh vertices (3-D corners of its parts)
    ext = _extent(_project(world, cam.fx, cam.fy, cam.cx, cam.cy, cam.pitch))
    expected = ext + np.array([-RASTER_PAD, -RASTER_PAD, RASTER_PAD, RASTER_PAD])
    assert np.abs(box - expected).max() <= 1.0, (box, expected)
    # the intrinsics matter: the environment's centred from-fov camera would put it elsewhere
    other = base_camera(sim.env, SMALL)
    ext_other = _extent(_project(world, other.fx, other.fy, other.cx, other.cy, cam.pitch))
    assert np.abs(ext_other - ext).max() > 3.0


def test_car_from_behind_matches_its_3d_box_corners_and_sits_at_cx():
    """A car on the optical axis 20 m ahead, seen from behind at roof height: its 3-D box corners
    project onto the label, and it is centred on column cx (not the image centre)."""
    for cam in (REAL.scaled(*SMALL), REAL):
        sim = Simulator("drive", "source", seed=0, camera=cam)
        prior = sim.env.prior("car")
        obj = ObjectSpec("car", (0.0, cam.height_m, 20.0), tuple(prior.size), yaw=-math.pi / 2)
        res, box = _render_one(sim, cam, obj)
        assert res.image.shape == (cam.height, cam.width, 3)
        corners = _extent(_project(_box_corners(obj), cam.fx, cam.fy, cam.cx, cam.cy, cam.pitch))
        tol = 1.0 + 0.01 * cam.width / 10  # the tyres sit a little inside the box's bottom corners
        assert np.abs(box - (corners + [-RASTER_PAD, -RASTER_PAD, RASTER_PAD, RASTER_PAD])).max() <= tol
        centre = 0.5 * (box[0] + box[2])
        assert abs(centre - cam.cx) <= 1.0, (centre, cam.cx)
        assert abs(centre - cam.width / 2) > 3.0  # off-centre principal point is honoured
        # the roof is at the camera's height: the top edge lies on the horizon row cy
        assert abs(box[1] - cam.cy) <= 1.0


def test_background_follows_the_principal_point():
    cam = REAL.scaled(*SMALL)
    sim = Simulator("drive", "source", seed=0, camera=cam)
    layout = sim.renderer.background.layout(cam)
    region = layout // 16  # 0 sky, 1 ground, 2.. zones
    rows_ground = np.flatnonzero((region > 0).any(axis=1))
    # the first ground row is where the ground is max_ground_distance away below the horizon cy
    first = cam.cy + cam.fy * cam.height_m / sim.env.max_ground_distance - 0.5
    assert abs(rows_ground[0] - math.ceil(first)) <= 1
    # on a ground row the road (zone 0: x in [-5.25, 1.75] m) spans cx + fx x / distance
    v = int(cam.cy + cam.fy * cam.height_m / 30.0)  # the row of the ground ~30 m ahead
    t = cam.height_m / ((v + 0.5 - cam.cy) / cam.fy)
    road_cols = np.flatnonzero(region[v] == 2)
    lo, hi = cam.cx + cam.fx * -5.25 / t, cam.cx + cam.fx * 1.75 / t
    # later zones (markings) paint over the road: compare the outer edges
    assert abs(road_cols[0] - lo) <= 1.0 and abs(road_cols[-1] + 1 - hi) <= 1.0


def test_cli_renders_through_a_camera_info_file(tmp_path, capsys):
    """``python -m sim2sg_core.sim render --camera-info`` → a rosbag whose CameraInfo is the given
    camera scaled to the image size, frames of that size, the mount as the pose mean."""
    from sim2sg_core.data.bags import read_bag_images, read_camera_info
    from sim2sg_core.sim.__main__ import main

    y = tmp_path / "camera_info.yaml"
    y.write_text(
        f"image_width: 1600\nimage_height: 900\ncamera_matrix:\n  rows: 3\n  cols: 3\n"
        f"  data: [{REAL.fx}, 0, {REAL.cx}, 0, {REAL.fy}, {REAL.cy}, 0, 0, 1]\n"
    )
    assert (
        main(
            [
                "render",
                "--env",
                "drive",
                "--domain",
                "source",
                "--n",
                "2",
                "--out",
                str(tmp_path / "b"),
                "--format",
                "rosbag",
                "--camera-info",
                str(y),
                "--camera-height",
                "1.5",
                "--camera-pitch",
                "0",
                "--image-size",
                "320x180",
                "--quiet",
            ]
        )
        == 0
    )
    info = read_camera_info(tmp_path / "b", "/camera/camera_info")
    assert (info["width"], info["height"]) == (320, 180)
    assert info["k"][0, 0] == pytest.approx(REAL.fx * 0.2) and info["k"][0, 2] == pytest.approx(REAL.cx * 0.2)
    frames = [rgb for _, rgb in read_bag_images(tmp_path / "b", "/camera/image_raw")]
    assert len(frames) == 2 and frames[0].shape == (180, 320, 3)
    assert main(["render", "--n", "1", "--out", str(tmp_path / "x"), "--camera-height", "1.5"]) == 2
    assert "need --camera-info" in capsys.readouterr().err
    assert (
        main(
            ["render", "--n", "1", "--out", str(tmp_path / "y"), "--camera-info", str(tmp_path / "no.yaml"), "--quiet"]
        )
        == 2
    )
    assert "no.yaml does not exist" in capsys.readouterr().err
