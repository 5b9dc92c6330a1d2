"""The registration check of a real evaluation folder's labels, run before any AP is computed on them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from sim2sg_core.adapt.bench.splits import RealData, vocab_of
from sim2sg_core.data.datasets import KittiDataset
from sim2sg_core.eval.vehicle_evidence import vehicle_evidence
from sim2sg_core.model.imagenet_prior import VehicleScorer
from sim2sg_core.utils.io import atomic_write_text

log = logging.getLogger(__name__)


#: File (in the bench folder) of the real evaluation labels' registration check.
LABEL_AUDIT_FILE = "label_audit.json"


def audit_real_labels(real: RealData, env: str, out_dir: Path) -> dict:
    """Check, before any AP is computed on them, that the real evaluation folder's labels lie on what they
    name: the ImageNet vehicle classifier's score of every labelled car against same-row controls
    (:mod:`sim2sg_core.eval.vehicle_evidence`). Written to ``out_dir/label_audit.json`` (reused while the
    folder's label files are unchanged) and quoted in ``table.md``."""
    labels = sorted(Path(real.eval_data).glob("label_2/*.txt"))
    stamp = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in labels]
    path = out_dir / LABEL_AUDIT_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            if old.get("eval_data") == str(real.eval_data) and old.get("labels") == stamp:
                return old
        except (OSError, ValueError):
            pass
    vocab = vocab_of(env)
    car = vocab.classes.index("car") if "car" in vocab.classes else 0
    data = KittiDataset(real.eval_data, vocab=vocab)
    scorer = VehicleScorer(device="cpu")
    result = vehicle_evidence(
        scorer.score_crops,
        [
            (img, np.array([o.box for o in g.objects if o.class_id == car]).reshape(-1, 4))
            for img, g in (data[i] for i in range(len(data)))
        ],
    )
    audit = {"eval_data": str(real.eval_data), "labels": stamp, "class": vocab.classes[car], **result.to_dict()}
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(audit, indent=2) + "\n")
    log.info("label registration check of %s: AUC %.3f %s", real.eval_data, result.auc, result.auc_ci95)
    return audit


def label_audit_lines(out_dir: Path) -> list[str]:
    """table.md's paragraph on the real labels' registration check (none when it was not run)."""
    path = out_dir / LABEL_AUDIT_FILE
    if not path.is_file():
        return []
    a = json.loads(path.read_text())
    lo, hi = a["auc_ci95"]
    verdict = (
        "**The labels do not lie on vehicles more often than chance placement: the AP below cannot rank methods.**"
        if hi < 0.6
        else "The labels point at vehicles."
    )
    return [
        f"Label registration check (`{LABEL_AUDIT_FILE}`): the ImageNet vehicle classifier scores the "
        f"{a['boxes']} labelled `{a['class']}` boxes above same-size boxes at random columns of the same rows "
        f"with AUC {a['auc']:.3f} [{lo:.3f}, {hi:.3f}] (0.5 = chance; boxes drawn on visible cars score about "
        f"0.8). {verdict}",
        "",
    ]
