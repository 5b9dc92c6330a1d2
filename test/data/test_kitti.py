"""KITTI object format: simulator export → import round trip, real-KITTI-style files, bad input."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from sim2sg_core.data.kitti import KittiFormatError, camera_from_calib, read_calib, read_kitti, write_kitti
from sim2sg_core.sim import Simulator

CALIB_KITTI = (
    "P0: 7.215377e+02 0.000000e+00 6.095593e+02 0.000000e+00 0.000000e+00 7.215377e+02 1.728540e+02 "
    "0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00\n"
    "P1: 7.215377e+02 0.000000e+00 6.095593e+02 -3.875744e+02 0.000000e+00 7.215377e+02 1.728540e+02 "
    "0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00\n"
    "P2: 7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 7.215377e+02 1.728540e+02 "
    "2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03\n"
    "P3: 7.215377e+02 0.000000e+00 6.095593e+02 -3.395242e+02 0.000000e+00 7.215377e+02 1.728540e+02 "
    "2.199936e+00 0.000000e+00 0.000000e+00 1.000000e+00 2.729905e-03\n"
    "R0_rect: 9.999239e-01 9.837760e-03 -7.445048e-03 -9.869795e-03 9.999421e-01 -4.278459e-03 7.402527e-03 "
    "4.351614e-03 9.999631e-01\n"
    "Tr_velo_to_cam: 7.533745e-03 -9.999714e-01 -6.166020e-04 -4.069766e-03 1.480249e-02 7.280733e-04 "
    "-9.998902e-01 -7.631618e-02 9.998621e-01 7.523790e-03 1.480755e-02 -2.717806e-01\n"
    "Tr_imu_to_velo: 9.999976e-01 7.553071e-04 -2.035826e-03 -8.086759e-01 -7.854027e-04 9.998898e-01 "
    "-1.482298e-02 3.195559e-01 2.024406e-03 1.482454e-02 9.998881e-01 -7.997231e-01\n"
)
# lines in the style of KITTI training/label_2/000008.txt
LABEL_KITTI = """Car 0.88 3 -0.69 0.00 192.37 402.31 374.00 1.60 1.57 3.23 -2.70 1.74 3.68 -1.29
Car 0.00 1 2.04 334.85 178.94 624.50 372.04 1.57 1.50 3.68 -1.17 1.65 7.86 1.90
Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 1.89 0.48 1.20 1.84 1.47 8.41 0.01
Cyclist 0.00 0 1.85 387.63 181.54 423.81 203.12 1.67 0.87 3.69 -16.53 2.39 58.49 1.57
DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10
"""


@pytest.fixture(scope="module")
def sim_samples():
    sim = Simulator("drive", "target", seed=9)
    return sim, [sim.sample(i) for i in range(4)]


def test_simulator_export_reads_back_as_the_same_scene_graphs(tmp_path, sim_samples):
    sim, samples = sim_samples
    assert write_kitti(tmp_path, samples) == 4
    items = read_kitti(tmp_path)
    assert [p.name for p, _ in items] == [f"{i:06d}.png" for i in range(4)]
    for (path, g), s in zip(items, samples):
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(img, s.image)  # PNG is lossless
        assert [o.class_name for o in g.objects] == [o.class_name for o in s.graph.objects]
        for a, b in zip(g.objects, s.graph.objects):
            np.testing.assert_allclose(a.box, b.box, atol=0.006)
            np.testing.assert_allclose(a.position, b.position, atol=0.006)
            np.testing.assert_allclose(a.size, b.size, atol=0.006)
            assert a.truncation == pytest.approx(b.truncation, abs=0.006)
            assert (a.occlusion > 0) == (b.occlusion >= 0.1)
        assert g.triplets() == s.graph.triplets()
        assert (g.image_width, g.image_height) == (640, 192)
        # the simulator's label-filter regions come back as DontCare ignore regions
        assert [r.kind for r in s.graph.ignore_regions] == ["label_filter"] * len(s.graph.ignore_regions)
        assert [r.kind for r in g.ignore_regions] == ["DontCare"] * len(s.graph.ignore_regions)
        for a, b in zip(g.ignore_regions, s.graph.ignore_regions):
            np.testing.assert_allclose(a.box, b.box, atol=0.006)
    assert sum(len(s.graph.ignore_regions) for s in samples) > 0  # the drive scenes have some
    # P2 projects each label's bottom centre onto the bottom edge of its box (KITTI semantics)
    calib = read_calib(tmp_path / "calib" / "000000.txt")
    for o in samples[0].graph.objects:
        if o.truncation == 0 and o.occlusion == 0:
            u, v, w = calib["P2"] @ np.array([*o.position, 1.0])
            assert o.box[0] - 1 <= u / w <= o.box[2] + 1 and abs(v / w - o.box[3]) < 1.5
    cam = camera_from_calib(calib, 640, 192, samples[0].scene.camera.height_m)
    assert cam.pitch == pytest.approx(samples[0].scene.camera.pitch, abs=1e-6)
    assert cam.fx == pytest.approx(sim.camera.fx) and cam.cx == pytest.approx(sim.camera.cx)


def _kitti_dir(tmp_path, label=LABEL_KITTI, size=(1242, 375), calib=CALIB_KITTI):
    for sub in ("image_2", "label_2", "calib"):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(tmp_path / "image_2" / "000008.png"), np.zeros((size[1], size[0], 3), np.uint8))
    (tmp_path / "label_2" / "000008.txt").write_text(label)
    if calib is not None:
        (tmp_path / "calib" / "000008.txt").write_text(calib)
    return tmp_path


def test_unknown_occlusion_level_round_trips(tmp_path):
    from sim2sg_core.data.kitti import OCCLUSION_FROM_LEVEL

    line = "Car 0.00 3 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n"
    ((_, g),) = read_kitti(_kitti_dir(tmp_path, label=line))
    assert g.objects[0].occlusion == OCCLUSION_FROM_LEVEL[3] == 1.0


def test_real_kitti_style_labels_become_scene_graphs(tmp_path):
    items = read_kitti(_kitti_dir(tmp_path))
    ((_, g),) = items
    # Cyclist and DontCare are ignored by the class map: not objects, but the graph's ignore regions
    assert [o.class_name for o in g.objects] == ["car", "car", "pedestrian"]
    assert [(r.kind, r.box) for r in g.ignore_regions] == [
        ("Cyclist", (387.63, 181.54, 423.81, 203.12)),
        ("DontCare", (503.89, 169.71, 590.61, 190.13)),
    ]
    # occluded level 3 is KITTI's "unknown": read as 1.0, outside every evaluation difficulty
    assert g.objects[0].occlusion == 1.0 and g.objects[1].occlusion == pytest.approx(0.3)
    assert g.objects[0].truncation == pytest.approx(0.88)
    trip = {(r.subject, r.object): r.predicate for r in g.relationships}
    # car0 (-2.70, 3.68), car1 (-1.17, 7.86), ped (1.84, 8.41): car0-ped dx=-4.54, dz=-4.73 → front
    assert trip == {(0, 1): "front", (0, 2): "front", (1, 0): "behind", (1, 2): "left"}
    cam = camera_from_calib(read_calib(tmp_path / "calib" / "000008.txt"), 1242, 375)
    assert cam.fx == pytest.approx(721.5377, rel=1e-4) and abs(cam.pitch) < 1e-3


@pytest.mark.parametrize(
    "label,match",
    [
        ("Truck2 0.00 0 0.0 10 10 50 50 1.5 1.6 4.0 1.0 1.6 10.0 0.0\n", r"000008.txt:1: unknown object type 'Truck2'"),
        (
            "Car 0.00 0 0.0 10 10 50 50 1.5 1.6 4.0 1.0 1.6 10.0\n",
            r"000008.txt:1: expected 15 \(or 16 with score\) fields, got 14",
        ),
        (
            "Car 0.00 0 0.0 10 10 50 50 1.5 1.6 4.0 1.0 1.6 10.0 0.0\n"
            "Car 0.00 0 0.0 10 10 5O 50 1.5 1.6 4.0 1.0 1.6 10.0 0.0\n",
            r"000008.txt:2: non-numeric field",
        ),
        (
            "Car 0.00 0 0.0 10 10 1300 50 1.5 1.6 4.0 1.0 1.6 10.0 0.0\n",
            r"000008.txt:1: box .* lies outside the 1242x375 image",
        ),
        ("Car 0.00 0 0.0 50 10 10 50 1.5 1.6 4.0 1.0 1.6 10.0 0.0\n", r"000008.txt:1: box .* x2 < x1"),
    ],
)
def test_bad_labels_name_file_and_line(tmp_path, label, match):
    with pytest.raises(KittiFormatError, match=match):
        read_kitti(_kitti_dir(tmp_path, label=label))


def test_missing_calib_wrong_image_size_and_missing_folders(tmp_path):
    with pytest.raises(KittiFormatError, match=r"calib file .*calib/000008.txt is missing"):
        read_kitti(_kitti_dir(tmp_path / "a", calib=None))
    with pytest.raises(KittiFormatError, match=r"needs a 'P2:' line"):
        read_kitti(_kitti_dir(tmp_path / "b", calib="P0: 1 2 3\n"))
    with pytest.raises(KittiFormatError, match=r"000008.png: image is 1242x375, expected 640x192"):
        read_kitti(_kitti_dir(tmp_path / "c"), expected_size=(640, 192))
    # an image smaller than its labels say: boxes fall outside it
    with pytest.raises(KittiFormatError, match=r"000008.txt:1: box .* outside the 640x192 image"):
        read_kitti(_kitti_dir(tmp_path / "d", size=(640, 192)))
    shutil.rmtree(tmp_path / "d" / "image_2")
    with pytest.raises(KittiFormatError, match="image_2/ is missing"):
        read_kitti(tmp_path / "d")


def test_custom_class_map_and_vocab(tmp_path, sim_samples):
    clevr = Simulator("clevr", "source", seed=0)
    samples = [clevr.sample(i) for i in range(2)]
    write_kitti(tmp_path, samples, class_map={"map": {"Cube": "cube", "Sphere": "sphere", "Cylinder": "cylinder"}})
    items = read_kitti(tmp_path, {"map": {"Cube": "cube", "Sphere": "sphere", "Cylinder": "cylinder"}}, clevr.vocab)
    assert [len(g.objects) for _, g in items] == [len(s.graph.objects) for s in samples]
    assert [len(g.relationships) for _, g in items] == [len(s.graph.relationships) for s in samples]
    # DontCare needs no entry in a class map: the format defines it
    lf = sorted((tmp_path / "label_2").glob("*.txt"))[0]
    lf.write_text(lf.read_text() + "DontCare -1 -1 -10 1.00 2.00 30.00 40.00 -1 -1 -1 -1000 -1000 -1000 -10\n")
    g0 = read_kitti(tmp_path, {"map": {"Cube": "cube", "Sphere": "sphere", "Cylinder": "cylinder"}}, clevr.vocab)[0][1]
    assert g0.ignore_regions[-1].box == (1.0, 2.0, 30.0, 40.0) and len(g0.objects) == len(samples[0].graph.objects)


def test_two_d_only_labels_get_ground_positions_through_the_calibration(tmp_path):
    """2-D datasets in KITTI layout (3-D fields all zero): positions come from the box's bottom centre
    on the ground through the calib, so relationships follow the same rule as simulator labels."""
    fx, cx, cy, w, h, cam_h = 1000.0, 800.0, 450.0, 1600, 900, 1.5
    for d in ("image_2", "label_2", "calib"):
        (tmp_path / d).mkdir()
    cv2.imwrite(str(tmp_path / "image_2" / "000000.png"), np.zeros((h, w, 3), np.uint8))
    p2 = f"P2: {fx} 0 {cx} 0 0 {fx} {cy} 0 0 0 1 0\n"
    (tmp_path / "calib" / "000000.txt").write_text(p2)
    # car A: bottom 100 px below the horizon at the image centre -> z = 1000 * 1.5 / 100 = 15 m, x = 0
    # car B: bottom 50 px below, 500 px right -> z = 30 m, x = 500 * 30 / 1000 = 15 m
    # a box whose bottom is above the horizon gets no position
    (tmp_path / "label_2" / "000000.txt").write_text(
        "Car 0 0 0 750 500 850 550 0 0 0 0 0 0 0\n"
        "Car 0 0 0 1250 450 1350 500 0 0 0 0 0 0 0\n"
        "Car 0 0 0 100 300 200 400 0 0 0 0 0 0 0\n"
    )
    items = read_kitti(tmp_path, camera_height_m=cam_h)
    objs = items[0][1].objects
    np.testing.assert_allclose(objs[0].position, (0.0, cam_h, 15.0), atol=1e-6)
    np.testing.assert_allclose(objs[1].position, (15.0, cam_h, 30.0), atol=1e-6)
    assert objs[2].position is None
    preds = {(r.subject, r.object): r.predicate for r in items[0][1].relationships}
    # A is nearer (dz = -15) but B is 15 m to the right (|dx| = |dz|: the rule says left/right)
    assert preds == {(0, 1): "left", (1, 0): "right"}
    # without the mount height the zero 3-D fields stay as they are
    assert read_kitti(tmp_path)[0][1].objects[0].position == (0.0, 0.0, 0.0)


def test_each_frame_reads_its_own_calibration(tmp_path):
    """KITTI's recording days differ by a few pixels of focal length / principal point: a 2-D-only box is put on
    the ground through its own frame's calib, not a shared one."""
    for d in ("image_2", "label_2", "calib"):
        (tmp_path / d).mkdir()
    box = "Car 0 0 0 550 250 650 300 0 0 0 0 0 0 0\n"  # bottom centre (600, 300)
    for stem, (f, cy) in {"000000": (700.0, 175.0), "000001": (720.0, 200.0)}.items():
        cv2.imwrite(str(tmp_path / "image_2" / f"{stem}.png"), np.zeros((375, 1242, 3), np.uint8))
        (tmp_path / "calib" / f"{stem}.txt").write_text(f"P2: {f} 0 600 0 0 {f} {cy} 0 0 0 1 0\n")
        (tmp_path / "label_2" / f"{stem}.txt").write_text(box)
    (a, ga), (b, gb) = read_kitti(tmp_path, camera_height_m=1.65)
    # z = f * h / (v_bottom - cy): 700 * 1.65 / 125 and 720 * 1.65 / 100
    assert ga.objects[0].position[2] == pytest.approx(700 * 1.65 / 125, rel=1e-6)
    assert gb.objects[0].position[2] == pytest.approx(720 * 1.65 / 100, rel=1e-6)
