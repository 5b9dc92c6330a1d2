"""Label alignment: pseudo-statistics of (predicted) target graphs → reconstructed scenes and a
re-fitted generator whose class counts follow the predictions, rendered in SOURCE appearance."""

import numpy as np
import pytest

from sim2sg_core.adapt.label_alignment import LabelAligner, confident_class_counts, rescale_graph
from sim2sg_core.adapt.sim2sg import pseudo_label_graphs
from sim2sg_core.scene_graph import SceneGraph, SceneObject
from sim2sg_core.sim import Simulator

SIZE = (320, 96)


def _as_predictions(graphs, keep_classes=None, score=0.9):
    """Label graphs turned into what a predictor outputs: boxes, classes and scores only."""
    out = []
    for g in graphs:
        objs = [
            SceneObject(class_name=o.class_name, class_id=o.class_id, box=o.box, score=score)
            for o in g.objects
            if keep_classes is None or o.class_name in keep_classes
        ]
        out.append(SceneGraph(objects=objs, image_width=g.image_width, image_height=g.image_height))
    return out


def _count(graphs_or_scenes):
    c = {}
    for g in graphs_or_scenes:
        for o in g.objects:
            c[o.class_name] = c.get(o.class_name, 0) + 1
    return c


@pytest.fixture(scope="module")
def aligner():
    return LabelAligner(
        simulator=Simulator(env="drive", domain="source", seed=0, image_size=SIZE), score_threshold=0.5, refit=True
    )


@pytest.fixture(autouse=True)
def _fresh_generator(aligner):
    aligner.content = aligner.source_content  # each test starts from the source generator
    aligner.refit_blend = 1.0


@pytest.fixture(scope="module")
def target_graphs():
    sim = Simulator(env="drive", domain="target", seed=7, image_size=SIZE)
    return [sim.sample(i).graph for i in range(40)]


def test_reconstructed_scenes_follow_confident_predictions(aligner, target_graphs):
    preds = _as_predictions(target_graphs)
    # add unconfident clutter that must be ignored
    for g in preds[:20]:
        g.objects.append(SceneObject("house", 3, (10.0, 30.0, 60.0, 60.0), score=0.2))
    want = confident_class_counts(preds, 0.5)
    res = aligner.analyse(preds)
    got = _count(res.scenes)
    assert res.class_counts == want and res.objects == sum(want.values())
    # Every lifted object is a confident prediction; objects whose bottom edge lies above the SOURCE
    # camera's horizon (the target camera is pitched differently) cannot be lifted, so a few far ones
    # are lost — but the class mix follows the predictions.
    tot_w, tot_g = sum(want.values()), sum(got.values())
    assert tot_g >= 0.75 * tot_w
    for c, n in want.items():
        assert 0.6 * n <= got.get(c, 0) <= n, (c, n, got)
        assert abs(got.get(c, 0) / tot_g - n / tot_w) < 0.06, (c, got, want)
    # rendered in the source appearance, the label-aligned images carry those objects again
    imgs, graphs = aligner.render(res.scenes)
    rendered = _count(graphs)
    for c, n in got.items():
        assert rendered.get(c, 0) >= 0.75 * n, (c, n, rendered)
    # source appearance: the source sky colour, not the target's grey sky (top rows of the image)
    src = Simulator(env="drive", domain="source", seed=0, image_size=SIZE).sample(0).image
    tgt = Simulator(env="drive", domain="target", seed=7, image_size=SIZE).sample(0).image

    def sky(im):
        return im[:4].reshape(-1, 3).mean(0)

    assert np.abs(sky(imgs[0]) - sky(src)).max() < np.abs(sky(imgs[0]) - sky(tgt)).max()


def test_source_camera_predictions_are_all_reconstructed(aligner):
    """With the camera the reconstruction assumes, every confident object comes back, at its place."""
    sim = Simulator(env="drive", domain="source", seed=11, image_size=SIZE)
    samples = [sim.sample(i) for i in range(20)]
    preds = _as_predictions([s.graph for s in samples])
    res = aligner.analyse(preds)
    assert _count(res.scenes) == confident_class_counts(preds, 0.5)
    _, graphs = aligner.render(res.scenes)
    rendered, want = _count(graphs), _count(preds)
    for c, n in want.items():  # re-rendered labels: the same objects, bar an occlusion-filter borderline case
        assert abs(rendered.get(c, 0) - n) <= max(1, 0.1 * n), (c, rendered, want)


@pytest.mark.parametrize("only", ["car", "pedestrian"])
def test_refitted_generator_follows_predicted_class_mix(aligner, target_graphs, only):
    preds = _as_predictions(target_graphs, keep_classes={only})
    res = aligner.analyse(preds)
    src = aligner.source_content.classes
    new = res.content.classes
    assert new[only].count_mean > 0.5
    for c in new:
        if c != only:
            assert new[c].count_mean < 0.25 * src[c].count_mean
    scenes = aligner.synthesis_scenes(res, 30, generated_fraction=1.0, rng=np.random.default_rng(0))
    counts = _count(scenes)
    assert counts.get(only, 0) >= 0.85 * sum(counts.values())


def test_synthesis_mixes_reconstructions_and_generated(aligner, target_graphs):
    preds = _as_predictions(target_graphs[:10])
    res = aligner.analyse(preds)
    scenes = aligner.synthesis_scenes(res, 20, generated_fraction=0.5, rng=np.random.default_rng(1))
    assert len(scenes) == 20
    recon_layouts = {tuple(o.position for o in s.objects) for s in res.scenes}
    from_recon = sum(tuple(o.position for o in s.objects) in recon_layouts for s in scenes)
    assert from_recon == 10
    assert len({s.seed for s in scenes}) == 20  # every copy gets its own appearance draw


def test_predictions_on_other_image_sizes_are_rescaled(aligner, target_graphs):
    g = _as_predictions(target_graphs[:1])[0]
    big = rescale_graph(g, 2 * SIZE[0], 2 * SIZE[1])
    assert big.objects[0].box == pytest.approx(tuple(2 * v for v in g.objects[0].box))
    a = _count(aligner.analyse([g]).scenes)
    b = _count(aligner.analyse([big]).scenes)
    assert a == b


def test_pseudo_labels_keep_confident_objects_and_their_relationships():
    from sim2sg_core.scene_graph import Relationship

    objs = [
        SceneObject("car", 0, (0, 0, 10, 10), 0.9),
        SceneObject("car", 0, (20, 0, 30, 10), 0.1),
        SceneObject("pedestrian", 1, (40, 0, 45, 10), 0.8),
    ]
    rels = [Relationship(0, 1, "left", 1, 0.5), Relationship(0, 2, "left", 1, 0.7), Relationship(2, 0, "right", 2, 0.7)]
    (g,) = pseudo_label_graphs([SceneGraph(objs, rels, 100, 20)], 0.5)
    assert [o.score for o in g.objects] == [0.9, 0.8]
    assert [(r.subject, r.object, r.predicate) for r in g.relationships] == [(0, 1, "left"), (1, 0, "right")]
    g.validate()


def test_default_camera_is_the_source_domains_mean_pose():
    """Each environment's reconstruction camera sits where that environment's source camera does
    (a tabletop camera 2.6 m up, pitched 0.5 rad down, not a car's)."""
    sim = Simulator(env="clevr", domain="source", seed=0, image_size=(160, 112))
    al = LabelAligner(simulator=sim)
    assert (al.camera.height_m, al.camera.pitch) == pytest.approx((2.6, 0.5))
    samples = [sim.sample(i) for i in range(15)]
    preds = _as_predictions([s.graph for s in samples])
    res = al.analyse(preds)
    assert _count(res.scenes) == confident_class_counts(preds, 0.5)


def test_target_camera_lifts_and_redraws_target_predictions_in_place(target_graphs):
    """Given the target rig's pose, every confident target object is lifted, and rendering the
    reconstruction through that camera puts its box back where it was predicted."""
    from torchvision.ops import box_iou
    import torch

    sim = Simulator(env="drive", domain="source", seed=0, image_size=SIZE)
    al = LabelAligner(simulator=sim, camera=sim.camera.with_pose(1.85, 0.05), refit=False)
    preds = _as_predictions(target_graphs[:25])
    res = al.analyse(preds)
    want, got = confident_class_counts(preds, 0.5), _count(res.scenes)
    assert sum(got.values()) >= 0.95 * sum(want.values())
    _, graphs = al.render(res.scenes)
    ious = []
    pred_by_image = [p for p in preds if any(o.score >= 0.5 for o in p.objects)]
    for p, g in zip(pred_by_image, graphs):
        if not g.objects:
            continue
        iou = box_iou(torch.tensor([o.box for o in g.objects]), torch.tensor([o.box for o in p.objects]))
        ious += iou.max(dim=1).values.tolist()
    assert np.median(ious) > 0.8


def test_class_floor_keeps_undetected_classes_in_the_generator(target_graphs):
    """Only cars detected: without a floor the other classes vanish from the re-fitted generator;
    with min_class_fraction they stay at that share of their source count, cars still follow."""
    sim = Simulator(env="drive", domain="source", seed=0, image_size=SIZE)
    preds = _as_predictions(target_graphs, keep_classes={"car"})
    plain = LabelAligner(simulator=sim, refit_blend=1.0).analyse(preds).content.classes
    floored = LabelAligner(simulator=sim, refit_blend=1.0, min_class_fraction=0.5).analyse(preds).content.classes
    src = sim.content.classes
    for c in ("pedestrian", "vegetation", "house"):
        assert plain[c].count_mean < 0.25 * src[c].count_mean
        assert floored[c].count_mean == pytest.approx(0.5 * src[c].count_mean)
    assert floored["car"].count_mean == pytest.approx(plain["car"].count_mean)
    assert floored["car"].count_mean > src["car"].count_mean


def test_class_balanced_scores_keep_a_less_confident_class():
    """A class the model is less sure of (all its scores under the global threshold) still contributes
    its most confident predictions; a confident class keeps the global threshold; the map is monotone."""
    from sim2sg_core.adapt.label_alignment import class_balanced_scores

    def o(cid, score):
        return SceneObject(("car", "pedestrian")[cid], cid, (0.0, 0.0, 10.0, 10.0), score)

    graphs = [
        SceneGraph(objects=[o(0, 0.32), o(0, 0.38), o(1, 0.9)]),
        SceneGraph(objects=[o(0, 0.44), o(0, 0.47), o(1, 0.6), o(1, 0.2)]),
    ]
    assert confident_class_counts(graphs, 0.5) == {"pedestrian": 2}  # the global threshold drops every car
    out, thr = class_balanced_scores(graphs, threshold=0.5, fraction=0.5)
    assert thr[1] == 0.5 and 0.38 < thr[0] < 0.44  # cars: the median of their scores; pedestrians: capped
    assert confident_class_counts(out, 0.5) == {"car": 2, "pedestrian": 2}
    cars = [ob.score for g in out for ob in g.objects if ob.class_id == 0]
    assert cars == sorted(cars) and all(0.0 <= s <= 1.0 for s in cars)  # order kept within the class
    peds = [ob.score for g in out for ob in g.objects if ob.class_id == 1]
    assert peds == [0.9, 0.6, 0.2]  # a class already confident is left as it is
    same, _ = class_balanced_scores(graphs, threshold=0.5, fraction=0.0)  # fraction 0: thresholds = max
    assert confident_class_counts(same, 0.5) == {"pedestrian": 2}
