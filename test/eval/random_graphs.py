"""Random prediction / ground-truth scene graphs for metric tests (fast path vs. slow reference)."""

from sim2sg_core.scene_graph import IgnoreRegion, Relationship, SceneGraph, SceneObject, Vocabulary

VOCAB = Vocabulary(classes=("car", "person", "tree"))


def obj(cid, box, score=1.0, trunc=0.0, occ=0.0):
    return SceneObject(
        VOCAB.classes[cid], cid, tuple(float(v) for v in box), float(score), truncation=trunc, occlusion=occ
    )


def rel(s, o, pid, score=1.0):
    return Relationship(s, o, VOCAB.predicates[pid], pid, float(score))


def random_case(rng, n_images=6, num_classes=3, ignore=True, many_predicates=True):
    preds, gts = [], []
    for _ in range(n_images):
        gt_objs = []
        for _ in range(int(rng.integers(0, 7))):
            x, y = rng.uniform(0, 200, 2)
            w, h = rng.uniform(10, 90, 2)
            gt_objs.append(
                obj(
                    int(rng.integers(num_classes)),
                    (x, y, x + w, y + h),
                    trunc=float(rng.choice([0.0, 0.1, 0.2, 0.4, 0.6])),
                    occ=float(rng.choice([0.0, 0.0, 0.3, 0.7])),
                )
            )
        gt_rels = [
            rel(s, o, int(rng.integers(4)))
            for s in range(len(gt_objs))
            for o in range(len(gt_objs))
            if s != o and rng.random() < 0.6
        ]
        regions = []
        if ignore:
            for _ in range(int(rng.integers(0, 3))):
                x, y = rng.uniform(0, 200, 2)
                regions.append(IgnoreRegion((x, y, x + rng.uniform(10, 80), y + rng.uniform(10, 80))))
        gt = SceneGraph(objects=gt_objs, relationships=gt_rels, ignore_regions=regions)
        p_objs, src = [], []
        for gi, o in enumerate(gt_objs):  # noisy copies, some missed, some duplicated, some wrong class
            for _ in range(int(rng.integers(0, 3))):
                j = rng.normal(0, 6, 4)
                c = o.class_id if rng.random() > 0.15 else int(rng.integers(num_classes))
                b = (
                    o.box[0] + j[0],
                    o.box[1] + j[1],
                    max(o.box[2] + j[2], o.box[0] + j[0] + 1),
                    max(o.box[3] + j[3], o.box[1] + j[1] + 1),
                )
                p_objs.append(obj(c, b, float(rng.uniform(0.05, 1.0))))
                src.append(gi)
        src += [-1] * 10
        true_pred = {(r.subject, r.object): r.predicate_id for r in gt_rels}
        for r in regions:  # detections inside or across ignore regions
            if rng.random() < 0.7:
                x0, y0, x1, y1 = r.box
                x, y = rng.uniform(x0 - 10, x1), rng.uniform(y0 - 10, y1)
                p_objs.append(obj(int(rng.integers(num_classes)), (x, y, x + 20, y + 20), float(rng.uniform(0.05, 1))))
        for _ in range(int(rng.integers(0, 3))):  # pure false positives
            x, y = rng.uniform(0, 200, 2)
            p_objs.append(obj(int(rng.integers(num_classes)), (x, y, x + 20, y + 20), float(rng.uniform(0.05, 1))))
        rels = []
        for s in range(len(p_objs)):
            for o in range(len(p_objs)):
                if s != o and rng.random() < 0.3:
                    pids = range(4) if many_predicates and rng.random() < 0.5 else [int(rng.integers(4))]
                    rels += [rel(s, o, pid, rng.uniform(0, 1)) for pid in pids]
                if s != o and (src[s], src[o]) in true_pred and rng.random() < 0.6:  # some right triplets
                    rels.append(rel(s, o, true_pred[(src[s], src[o])], rng.uniform(0.3, 1)))
        preds.append(SceneGraph(objects=p_objs, relationships=rels))
        gts.append(gt)
    return preds, gts
