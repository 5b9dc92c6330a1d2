"""Calibration files / messages → Camera (sim2sg_core.data.calibration), Camera.scaled / hfov_deg."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from sim2sg_core.data.calibration import (
    CalibrationError,
    calibration_kind,
    camera_from_camera_info,
    camera_from_camera_info_yaml,
    camera_from_kitti_calib,
    load_camera,
)
from sim2sg_core.sim.scene import Camera

FX, CX, CY, W, H = 1266.417, 816.267, 491.507, 1600, 900

CAMERA_INFO_YAML = f"""image_width: {W}
image_height: {H}
camera_name: cam_front
camera_matrix:
  rows: 3
  cols: 3
  data: [{FX}, 0.0, {CX}, 0.0, {FX}, {CY}, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.0, 0.0, 0.0, 0.0, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [{FX}, 0.0, {CX}, 0.0, 0.0, {FX}, {CY}, 0.0, 0.0, 0.0, 1.0, 0.0]
"""

KITTI_CALIB = (
    "\n".join(f"{k}: {FX} 0 {CX} 0 0 {FX} {CY} 0 0 0 1 0" for k in ("P0", "P1", "P2", "P3"))
    + """
R0_rect: 1 0 0 0 1 0 0 0 1
Tr_velo_to_cam: 1 0 0 0 0 1 0 0 0 0 1 0
Tr_imu_to_velo: 1 0 0 0 0 1 0 0 0 0 1 0
"""
)


def _check(cam: Camera, height_m=1.5, pitch=0.0):
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == pytest.approx((FX, FX, CX, CY))
    assert (cam.width, cam.height) == (W, H)
    assert cam.height_m == pytest.approx(height_m) and cam.pitch == pytest.approx(pitch, abs=1e-9)


def test_camera_info_yaml(tmp_path):
    p = tmp_path / "camera_info.yaml"
    p.write_text(CAMERA_INFO_YAML)
    _check(camera_from_camera_info_yaml(p, height_m=1.5))
    _check(load_camera(p, height_m=1.5), 1.5)
    _check(load_camera(str(p), height_m=1.2, pitch=0.03), 1.2, 0.03)
    assert calibration_kind(p) == "camera_info" and calibration_kind(tmp_path / "x.yml") == "camera_info"


def test_kitti_calib(tmp_path):
    p = tmp_path / "calib.txt"
    p.write_text(KITTI_CALIB)
    _check(camera_from_kitti_calib(p, W, H, height_m=1.5))
    _check(load_camera(p, height_m=1.5, image_size=(W, H)))
    _check(load_camera(p, height_m=1.5, pitch=0.02, image_size=(W, H)), pitch=0.02)
    with pytest.raises(CalibrationError, match=r"calib.txt has no image size; pass image_size"):
        load_camera(p, height_m=1.5)


def test_kitti_calib_keeps_the_pitch_encoded_in_p2(tmp_path):
    cam = Camera(fx=700.0, fy=700.0, cx=600.0, cy=180.0, width=1242, height=375, height_m=1.65, pitch=0.04)
    p = tmp_path / "pitched.txt"
    p.write_text("P2: " + " ".join(f"{v:.12e}" for v in cam.P.reshape(-1)) + "\n")
    got = camera_from_kitti_calib(p, 1242, 375, height_m=1.65)
    assert got.pitch == pytest.approx(0.04, abs=1e-9) and got.fx == pytest.approx(700.0)


def test_camera_info_message_and_dict():
    k = np.array([FX, 0, CX, 0, FX, CY, 0, 0, 1.0])
    msg = SimpleNamespace(k=k, width=W, height=H, header=SimpleNamespace(frame_id="cam_front"))
    _check(camera_from_camera_info(msg, height_m=1.5, pitch=0.0))
    _check(
        camera_from_camera_info(
            {"k": k.reshape(3, 3), "width": W, "height": H, "frame_id": "f"}, height_m=1.5, pitch=0.0
        )
    )
    _check(load_camera(msg, height_m=1.5))
    with pytest.raises(CalibrationError, match="all zeros"):
        camera_from_camera_info(SimpleNamespace(k=np.zeros(9), width=W, height=H), height_m=1.5, pitch=0.0)
    with pytest.raises(CalibrationError, match="focal lengths must be positive"):
        camera_from_camera_info(
            SimpleNamespace(k=[0, 0, 800, 0, 0, 450, 0, 0, 1], width=W, height=H), height_m=1.5, pitch=0.0
        )
    with pytest.raises(CalibrationError, match="missing field 'k'"):
        camera_from_camera_info({"width": W, "height": H}, height_m=1.5, pitch=0.0)


@pytest.mark.parametrize(
    "text, match",
    [
        ("image_width: 1600\nimage_height: 900\n", r"missing field 'camera_matrix'"),
        (
            "image_height: 900\ncamera_matrix: {rows: 3, cols: 3, data: [1, 0, 1, 0, 1, 1, 0, 0, 1]}\n",
            r"missing field 'image_width'",
        ),
        (
            "image_width: 1600\nimage_height: 900\ncamera_matrix: {rows: 3, cols: 3, data: [1, 0, 1, 0, 1, 1]}\n",
            r"'camera_matrix.data' needs 9 numbers \(3x3\), got 6",
        ),
        (
            "image_width: 1600\nimage_height: 900\n"
            "camera_matrix: {rows: 3, cols: 4, data: [1, 0, 1, 0, 1, 1, 0, 0, 1]}\n",
            r"'camera_matrix' must be 3x3",
        ),
        (
            "image_width: 1600\nimage_height: 900\n"
            "camera_matrix: {rows: 3, cols: 3, data: [0, 0, 800, 0, 0, 450, 0, 0, 1]}\n",
            r"field 'camera_matrix'.*focal lengths must be positive",
        ),
        (
            "image_width: 1600\nimage_height: 900\n"
            "camera_matrix: {rows: 3, cols: 3, data: [-5, 0, 800, 0, 5, 450, 0, 0, 1]}\n",
            r"focal lengths must be positive, got fx=-5",
        ),
        (
            "image_width: 0\nimage_height: 900\n"
            "camera_matrix: {rows: 3, cols: 3, data: [5, 0, 800, 0, 5, 450, 0, 0, 1]}\n",
            r"image size must be positive",
        ),
        ("camera_matrix: [unclosed\n", r"is not readable YAML"),
        ("- just\n- a list\n", r"must hold a mapping"),
    ],
)
def test_bad_camera_info_yaml(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(CalibrationError, match=match) as e:
        load_camera(p, height_m=1.5)
    assert str(p) in str(e.value)
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize(
    "text, match",
    [
        ("P0: 1 0 0 0 0 1 0 0 0 0 1 0\n", r"needs a 'P2:' line with 12 numbers"),
        ("P2: 1 0 0 0 0 1 0\n", r"needs a 'P2:' line with 12 numbers"),
        ("P2: 1 0 x 0 0 1 0 0 0 0 1 0\n", r"non-numeric value in P2"),
        ("P2: 0 0 0 0 0 0 0 0 0 0 1 0\n", r"field 'P2'.*singular"),
        ("P2: -700 0 600 0 0 700 180 0 0 0 1 0\n", r"field 'P2'.*focal lengths must be positive"),
    ],
)
def test_bad_kitti_calib(tmp_path, text, match):
    p = tmp_path / "calib.txt"
    p.write_text(text)
    with pytest.raises(CalibrationError, match=match) as e:
        load_camera(p, height_m=1.5, image_size=(W, H))
    assert "calib.txt" in str(e.value)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(CalibrationError, match=r"camera info file .*nope.yaml does not exist"):
        load_camera(tmp_path / "nope.yaml", height_m=1.5)
    with pytest.raises(CalibrationError, match=r"KITTI calib file .*nope.txt is missing"):
        load_camera(tmp_path / "nope.txt", height_m=1.5, image_size=(W, H))
    with pytest.raises(CalibrationError, match=r"unknown type '.json'"):
        load_camera(tmp_path / "cam.json", height_m=1.5)


def test_camera_scaled_and_hfov():
    cam = Camera(fx=FX, fy=FX, cx=CX, cy=CY, width=W, height=H, height_m=1.5, pitch=0.01)
    s = cam.scaled(480, 270)
    assert (s.width, s.height) == (480, 270)
    assert (s.fx, s.cx, s.fy, s.cy) == pytest.approx((FX * 0.3, CX * 0.3, FX * 0.3, CY * 0.3))
    assert (s.height_m, s.pitch) == (1.5, 0.01)
    a = cam.scaled(480, 144)  # another aspect: per-axis factors, non-square pixels
    assert a.fx == pytest.approx(FX * 0.3) and a.fy == pytest.approx(FX * 0.16) and a.cy == pytest.approx(CY * 0.16)
    assert cam.scaled(W, H) is cam
    # a point projects to the same place up to the per-axis factors
    pt = np.array([[1.0, 0.5, 12.0]])
    assert np.allclose(a.project(pt)[0], cam.project(pt)[0] * [0.3, 0.16])
    assert cam.hfov_deg == pytest.approx(math.degrees(math.atan(CX / FX) + math.atan((W - CX) / FX)))
    assert 64 < cam.hfov_deg < 65 and s.hfov_deg == pytest.approx(cam.hfov_deg)
    centred = Camera.from_fov(640, 192, 82.0)
    assert centred.hfov_deg == pytest.approx(82.0)
    with pytest.raises(ValueError):
        cam.scaled(0, 10)
