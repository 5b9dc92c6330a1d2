"""Street domains (photo-like city streets): per-domain class shapes, new primitives, weighted
palettes, exact labels, and the guarantee that the older domains never take the new code paths."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from sim2sg_core.sim import Camera, ObjectSpec, SceneDescription, Simulator, load_domain, load_environment
from sim2sg_core.sim.domains import PartSpec, SimConfigError
from sim2sg_core.sim.generate import SceneGenerator
from sim2sg_core.sim.render import (
    RASTER_PAD,
    _build_template,
    projected_extent,
    template_for,
    weighted_palette_index,
)
from sim2sg_core.sim.render import objects, renderer
from sim2sg_core.sim.render.background import Background

STREET = ("street", "street_randomized")
OLD = [("drive", d) for d in ("source", "randomized", "target", "target2")] + [
    (e, d) for e in ("clevr", "dining") for d in ("source", "target")
]
CAM = Camera.from_fov(640, 360, 65.0, height_m=1.5)


def _street_sim(domain="street", seed=0):
    return Simulator("drive", domain, seed=seed, camera=CAM)


# ------------------------------------------------------------------------------------------------
# the older domains are untouched


@pytest.mark.parametrize("env,domain", OLD)
def test_old_domains_use_the_environment_shapes_and_never_the_street_paths(env, domain, monkeypatch):
    sim = Simulator(env, domain, seed=3)
    app = sim.appearance
    assert not app.class_parts and not app.variants and app.facades is None and app.hood is None
    assert not app.region_texture and not app.class_texture and app.ground is None
    shapes = sim.renderer.shapes(app)
    for name, prior in sim.env.classes.items():
        ((variant, p, tmpl),) = shapes[name]
        assert variant is None and p is prior and tmpl is template_for(prior)
        assert tmpl.fixed is None and tmpl.lod_pts is None and tmpl.min_area == 0.0  # the general draw path
    before = [sim.sample(i) for i in range(3)]

    def boom(*a, **k):
        raise AssertionError("an old domain entered a street-only code path")

    for owner, name in (
        (renderer, "batch_street_shapes"),
        (renderer, "plan_facades"),
        (renderer, "draw_facade_shadows"),
        (renderer, "draw_facades"),
        (renderer, "class_texture_strength"),
        (renderer, "draw_hood"),
        (Background, "texture_strength"),
        (Background, "_street_layout"),
        (objects, "_street_shape_shadows"),
    ):
        monkeypatch.setattr(owner, name, boom)
    fresh = Simulator(env, domain, seed=3)
    for i, s in enumerate(before):
        again = fresh.sample(i)
        assert again.image.tobytes() == s.image.tobytes()
        assert again.graph.to_dict() == s.graph.to_dict()


def test_old_templates_match_a_fresh_build():
    """The shared template builder gives the older shapes exactly what it gave before the new
    fields (dz, caps, top_w, top_dx) existed: their defaults add nothing."""
    env = load_environment("drive")
    car = env.prior("car")
    fresh = _build_template(car)
    assert fresh.fixed is None
    np.testing.assert_array_equal(fresh.verts, template_for(car).verts)
    # the default car: three cuboids, 24 vertices and 18 faces spanning the unit box
    assert fresh.verts.shape == (24, 3) and len(fresh.faces) == 18
    assert fresh.verts[:, 1].min() == -1.0 and fresh.verts[:, 1].max() == 0.0
    for shape in ("cuboid", "cylinder", "cone", "frustum", "roof"):
        p = PartSpec(shape=shape, y=(0.1, 0.8), w=0.6, l=0.9)
        assert p.dz == 0.0 and p.caps and p.top_w == 1.0 and p.top_dx == 0.0


# ------------------------------------------------------------------------------------------------
# new primitives


def _prior(parts, **colours):
    env = load_environment("drive")
    return replace(env.prior("car"), parts=tuple(parts), part_colours={**env.prior("car").part_colours, **colours})


def test_wheel_panel_and_cabin_geometry():
    wheel = PartSpec(shape="wheel", y=(0.0, 0.4), l=0.14, dx=0.3, dz=0.5, sides=10)
    back_wheel = PartSpec(shape="wheel", y=(0.0, 0.4), l=0.14, dx=-0.3, dz=-0.5, sides=10)
    panel = PartSpec(shape="panel", y=(0.4, 0.5), w=0.2, dx=-0.5, dz=0.3)
    cabin = PartSpec(shape="cabin", y=(0.5, 1.0), w=0.9, l=0.6, dx=-0.05, top=0.5, top_w=0.8, top_dx=-0.05)
    glass = PartSpec(shape="cabin", y=(0.55, 0.95), w=0.8, l=0.5, top=0.5, caps=False)
    t = _build_template(_prior([wheel, back_wheel, panel, cabin, glass]))
    V = t.verts
    # wheel: an upright 10-gon in the plane z = dz, spanning its height and length fractions
    w = V[:10]
    assert np.allclose(w[:, 2], 0.5)
    assert np.isclose(-w[:, 1].min(), 0.4, atol=0.01) and np.isclose(-w[:, 1].max(), 0.0, atol=0.01)
    assert np.isclose(w[:, 0].max() - w[:, 0].min(), 0.14, atol=0.01) and np.isclose(w[:, 0].mean(), 0.3)
    # panel: a rectangle in the plane x = dx, w wide around dz
    pv = V[20:24]
    assert np.allclose(pv[:, 0], -0.5) and np.isclose(pv[:, 2].min(), 0.2) and np.isclose(pv[:, 2].max(), 0.4)
    # one-sided faces: the vertex order gives the outward normal
    assert t.fixed is not None and t.fixed[:3].all() and not t.fixed[3:].any()
    normals = [np.cross(V[f[1]] - V[f[0]], V[f[2]] - V[f[0]]) for f in t.faces[:3]]
    assert normals[0][2] > 0 and normals[1][2] < 0 and normals[2][0] < 0
    # cabin: the top face is shorter (top), narrower (top_w) and shifted back (top_dx)
    c = V[24:32]
    bottom, top = c[:4], c[4:]
    assert np.isclose(np.ptp(bottom[:, 0]), 0.6) and np.isclose(np.ptp(top[:, 0]), 0.3)
    assert np.isclose(np.ptp(bottom[:, 2]), 0.9) and np.isclose(np.ptp(top[:, 2]), 0.72)
    assert np.isclose(top[:, 0].mean() - bottom[:, 0].mean(), -0.05)
    # caps: false leaves out the top and bottom faces
    assert sum(1 for p in t.face_part if p == 3) == 6 and sum(1 for p in t.face_part if p == 4) == 4


def test_projected_extent_includes_the_new_primitives():
    """``projected_extent`` (used by reconstruction with RASTER_PAD) covers wheels and panels."""
    body = PartSpec(shape="cuboid", y=(0.3, 0.6), w=0.8, l=0.8)
    wheels = [PartSpec(shape="wheel", y=(0.0, 0.45), l=0.2, dx=dx, dz=dz) for dx in (-0.38, 0.38) for dz in (-0.5, 0.5)]
    plate = PartSpec(shape="panel", y=(0.2, 0.3), w=0.3, dx=0.5)
    obj = ObjectSpec("car", (0.0, 1.5, 9.0), (1.5, 1.8, 4.5), 0.0)  # side view
    e_body = projected_extent(_prior([body]), obj, CAM)
    e_all = projected_extent(_prior([body, *wheels, plate]), obj, CAM)
    assert e_all[3] > e_body[3] + 20  # the wheels reach the ground below the body
    assert e_all[0] < e_body[0] - 5 and e_all[2] > e_body[2] + 5  # and stick out in front and behind
    rear_plate = replace(plate, dx=-0.5)
    obj = ObjectSpec("car", (0.0, 1.5, 9.0), (1.5, 1.8, 4.5), -math.pi / 2)  # from behind: the rear plate hangs lower
    assert projected_extent(_prior([body, rear_plate]), obj, CAM)[3] > projected_extent(_prior([body]), obj, CAM)[3]


def test_street_car_shapes_stay_inside_the_label_size_box():
    """The label geometry contract: every street car part lies inside the unit box (size = extent,
    position = bottom centre)."""
    app = load_domain("drive", "street").appearance
    variants = app.class_parts["car"]
    assert len(variants) >= 3
    for v in variants:
        V = _build_template(_prior(v.parts, **app.part_colours["car"])).verts
        assert V[:, 0].min() >= -0.5 - 1e-9 and V[:, 0].max() <= 0.5 + 1e-9
        assert V[:, 2].min() >= -0.5 - 1e-9 and V[:, 2].max() <= 0.5 + 1e-9
        assert V[:, 1].min() >= -1.0 - 1e-9 and V[:, 1].max() <= 1e-9
        shapes = {p.shape for p in v.parts}
        assert {"wheel", "panel", "cabin"} <= shapes
        colours = {p.colour for p in v.parts}
        assert {"tyre", "glass", "headlight", "taillight", "plate", "trim"} <= colours


# ------------------------------------------------------------------------------------------------
# exact labels


@pytest.mark.parametrize("domain", STREET)
def test_street_boxes_are_the_extent_of_visible_instance_pixels(domain):
    sim = _street_sim(domain, seed=1)
    n = 0
    for i in range(5):
        res = sim.render_full(sim.scene(i))
        for obj, k in zip(res.graph.objects, res.label_index):
            ys, xs = np.nonzero(res.instance_map == k + 1)
            assert obj.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert 0.0 <= obj.occlusion <= sim.env.labels.max_occlusion
            n += obj.class_name == "car"
        res.graph.validate()
    assert n >= 10


@pytest.mark.parametrize("domain", STREET)
def test_street_same_seed_same_bytes(domain):
    a, b = _street_sim(domain, 7), _street_sim(domain, 7)
    s3, s0 = a.sample(3), a.sample(0)
    assert b.sample(0).image.tobytes() == s0.image.tobytes()
    assert b.sample(3).image.tobytes() == s3.image.tobytes()
    assert _street_sim(domain, 8).sample(3).image.tobytes() != s3.image.tobytes()


def _one_car_scene(yaw, x=2.0, z=9.0, size=(1.45, 1.8, 4.75)):
    return SceneDescription(camera=CAM, objects=[ObjectSpec("car", (x, 1.5, z), size, yaw, 0)], seed=4, env="drive")


@pytest.mark.parametrize(
    "part,yaw",
    [
        ("tyre", 0.0),
        ("rim", 0.0),
        ("taillight", -math.pi / 2),
        ("plate", -math.pi / 2),
        ("headlight", math.pi / 2),
        ("glass", -2.2),
    ],
)
def test_wheels_and_lights_are_drawn_inside_the_car(part, yaw):
    """Re-colouring one part colour changes pixels only inside the car's box and id area."""
    sim = _street_sim("street")
    app = sim.appearance.variants[0][1]
    app = replace(app, object_colour_jitter=0.0, variants=(), blur_sigma=(0.0, 0.0))  # (blur spreads changes)
    loud = replace(app, part_colours={**app.part_colours, "car": {**app.part_colours["car"], part: (0, 255, 0)}})
    scene = _one_car_scene(yaw)
    a, b = sim.renderer.render(scene, app), sim.renderer.render(scene, loud)
    changed = np.any(a.image != b.image, axis=2)
    assert changed.sum() >= 6, f"{part} is not visible"
    (obj,) = a.graph.objects
    x0, y0, x1, y1 = (int(v) for v in obj.box)
    ys, xs = np.nonzero(changed)
    assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1
    assert (a.instance_map[changed] == 1).all()
    np.testing.assert_array_equal(a.instance_map, b.instance_map)


# ------------------------------------------------------------------------------------------------
# weighted palettes, content


def test_weighted_palette_follows_its_weights():
    weights = [25, 20, 18, 15, 9, 8, 2, 2, 1]
    rng = np.random.default_rng(0)
    n = 20000
    idx = [weighted_palette_index(int(c), weights) for c in rng.integers(0, 1 << 16, n)]
    counts = np.bincount(idx, minlength=len(weights))
    expected = n * np.asarray(weights, float) / sum(weights)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 26.1, (chi2, counts.tolist())  # 8 degrees of freedom, p = 0.001
    # consecutive indices (reconstructions use 0, 1, 2, ...) still spread over the palette
    assert len({weighted_palette_index(i, weights) for i in range(20)}) >= 5
    assert weighted_palette_index(5, [0, 1, 0]) == 1


def test_renderer_uses_palette_weights_only_when_given():
    sim = _street_sim("street")
    app = replace(sim.appearance.variants[0][1], object_colour_jitter=0.0)
    prior = sim.renderer.shapes(app)["car"][0][1]
    palette = app.palettes["car"]
    rng = np.random.default_rng(0)
    for ci in (0, 1, 7, 12345):
        o = ObjectSpec("car", (0, 1.5, 10), (1.5, 1.8, 4.5), 0.0, ci)
        cols = sim.renderer.shape_library.object_colours(prior, o, app, rng)
        want = palette[weighted_palette_index(ci, app.palette_weights["car"])]
        np.testing.assert_array_equal(cols["body"], want)
    old = Simulator("drive", "source")
    sp = old.env.prior("car")
    o = ObjectSpec("car", (0, 1.65, 10), (1.5, 1.8, 4.5), 0.0, 12345)
    cols = old.renderer.shape_library.object_colours(sp, o, old.appearance, rng)
    np.testing.assert_array_equal(cols["body"], sp.palette[12345 % len(sp.palette)])


def test_street_content_sizes_rows_and_traffic_side():
    sim = _street_sim("street")
    gen = SceneGenerator(env=sim.env, content=sim.content, camera=sim.camera)
    rng = np.random.default_rng(0)
    cars = [o for _ in range(150) for o in gen.generate(rng).objects if o.class_name == "car"]
    counts = [sum(o.class_name == "car" for o in gen.generate(rng).objects) for _ in range(150)]
    assert max(counts) <= 14 and 4 <= np.mean(counts) <= 10
    h = np.array([o.size[0] for o in cars])
    length = np.array([o.size[2] for o in cars])
    assert h.min() < 1.5 and h.max() > 1.85 and length.min() < 4.2 and length.max() > 4.9
    # right-hand traffic: the oncoming lane and the left parking row face the camera (but for the
    # few parked the other way round, yaw_flip)
    facing = np.array([math.cos(o.yaw - math.pi / 2) > 0 for o in cars])
    x = np.array([o.position[0] for o in cars])
    assert facing[x < -2.5].mean() > 0.9 and (~facing[x > -1.0]).mean() > 0.9
    parked = [o for o in cars if abs(o.position[0] - 2.95) < 0.5]
    assert len(parked) > 0.2 * len(cars)


def test_variants_are_drawn_per_image():
    sim = _street_sim("street")
    skies = set()
    for i in range(24):
        img = sim.sample(i).image
        skies.add(bool(img[:20, :, 2].mean() > img[:20, :, 0].mean() + 25))  # blue sky vs grey
    assert skies == {True, False}


# ------------------------------------------------------------------------------------------------
# configuration errors name the key


def _street_raw():
    env = load_environment("drive")
    import copy

    return env, copy.deepcopy(env.domains["street"])


def _parse(env, d):
    from sim2sg_core.sim.domains import parse_appearance

    return parse_appearance(d["appearance"], env, "drive.yaml: domains.street.appearance")


def test_bad_class_parts_config_names_the_key():
    env, d = _street_raw()
    d["appearance"]["class_parts"]["car"][3]["parts"][2]["colour"] = "glas"
    with pytest.raises(SimConfigError, match=r"class_parts\.car\[3\]\.parts\[2\]\.colour: 'glas'"):
        _parse(env, d)
    env, d = _street_raw()
    d["appearance"]["class_parts"]["lorry"] = [{"shape": "cuboid"}]
    with pytest.raises(SimConfigError, match=r"class_parts\.lorry: unknown class 'lorry'"):
        _parse(env, d)
    env, d = _street_raw()
    d["appearance"]["class_parts"]["car"][0]["parts"][0]["shape"] = "blob"
    with pytest.raises(SimConfigError, match=r"class_parts\.car\[0\]\.parts\[0\]\.shape: unknown shape 'blob'"):
        _parse(env, d)
    env, d = _street_raw()
    d["appearance"]["class_parts"]["car"].append({"shape": "cuboid"})
    with pytest.raises(SimConfigError, match=r"class_parts\.car: mixes parts and"):
        _parse(env, d)
    env, d = _street_raw()
    d["appearance"]["class_parts"]["pedestrian"][0]["wheels"] = 4
    with pytest.raises(SimConfigError, match=r"class_parts\.pedestrian\[0\]: unknown field\(s\) \['wheels'\]"):
        _parse(env, d)
    env, d = _street_raw()
    d["appearance"]["class_parts"]["car"][0]["parts"][4]["y"] = [0.4, 0.0]
    with pytest.raises(SimConfigError, match=r"class_parts\.car\[0\]\.parts\[4\]\.y"):
        _parse(env, d)


def test_bad_street_options_name_the_key():
    env, d = _street_raw()
    d["appearance"]["palette_weights"]["car"] = [1, 2, 3]
    with pytest.raises(SimConfigError, match=r"palette_weights\.car: need 9 weights"):
        _parse(env, d)
    env, d = _street_raw()
    d["appearance"]["region_texture"]["lawn"] = 0.1
    with pytest.raises(SimConfigError, match=r"region_texture: 'lawn'"):
        _parse(env, d)
    env, d = _street_raw()
    d["appearance"]["facades"]["windos"] = 0.5
    with pytest.raises(SimConfigError, match=r"facades: unknown field\(s\) \['windos'\]"):
        _parse(env, d)
    env, d = _street_raw()
    d["appearance"]["ground"]["zones"][0]["colour"] = "tarmac"
    with pytest.raises(SimConfigError, match=r"colours: missing colour\(s\) \['tarmac'\]"):
        _parse(env, d)
    env, d = _street_raw()
    d["appearance"]["variants"][1]["ambient"] = "bright"
    with pytest.raises(SimConfigError, match=r"variants\[1\]\.ambient"):
        _parse(env, d)


def test_reconstruction_boxes_render_back_in_the_street_look():
    """Label alignment renders reconstructed scenes in a source appearance: with ``street`` as that
    appearance the re-rendered boxes stay close to the input boxes (the environment's cuboid car
    drives the fit, the street car fills the same size box)."""
    from torchvision.ops import box_iou
    import torch
    from sim2sg_core.scene_graph import SceneGraph, SceneObject
    from sim2sg_core.sim.reconstruct import reconstruct_scene

    sim = _street_sim("street", seed=5)
    ious = []
    for i in range(6):
        s = sim.sample(i)
        clean = [o for o in s.graph.objects if o.truncation == 0 and o.occlusion == 0 and o.class_name == "car"]
        pred = SceneGraph(
            objects=[SceneObject(o.class_name, o.class_id, o.box, score=0.9, yaw=o.yaw) for o in clean],
            image_width=640,
            image_height=360,
        )
        scene = reconstruct_scene(pred, s.scene.camera, sim.env)
        res = sim.render_full(scene, "street")
        got = dict(zip(res.label_index, res.graph.objects))
        for k, o in enumerate(clean):
            if k in got:
                ious.append(box_iou(torch.tensor([o.box]), torch.tensor([got[k].box])).item())
    assert len(ious) >= 5 and np.median(ious) > 0.8
    assert RASTER_PAD == 0.5
