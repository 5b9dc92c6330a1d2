"""The single contract between every part of sim2sg: plain scene-graph dataclasses.

Boxes are float ``(x_min, y_min, x_max, y_max)`` in source-image pixels. Ground positions are in
the camera frame (x right, y down, z forward, metres). The relationship rule lives here because
the simulator, the KITTI import and the evaluation must all agree on it.
"""

from __future__ import annotations

import dataclasses

import math
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

#: Spatial predicates of every built-in environment, in id order.
PREDICATES: tuple[str, ...] = ("front", "left", "right", "behind")


class SceneGraphError(ValueError):
    """A scene graph that breaks its own invariants (index out of range, bad box, ...)."""


def _box4(values) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in values)
    return x0, y0, x1, y1


@dataclass(frozen=True)
class Vocabulary:
    """Class and predicate names of one environment, plus which classes may be a subject.

    ``subject_classes`` empty means any class may be the subject.
    """

    classes: tuple[str, ...]
    predicates: tuple[str, ...] = PREDICATES
    subject_classes: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "predicates", tuple(self.predicates))
        object.__setattr__(self, "subject_classes", tuple(self.subject_classes))
        for name, seq in (("classes", self.classes), ("predicates", self.predicates)):
            if not seq:
                raise SceneGraphError(f"vocabulary has no {name}")
            if len(set(seq)) != len(seq):
                raise SceneGraphError(f"vocabulary {name} has duplicates: {list(seq)}")
        unknown = set(self.subject_classes) - set(self.classes)
        if unknown:
            raise SceneGraphError(f"subject classes {sorted(unknown)} are not in classes {list(self.classes)}")

    def class_id(self, name: str) -> int:
        try:
            return self.classes.index(name)
        except ValueError:
            raise SceneGraphError(f"unknown class {name!r}; known: {list(self.classes)}") from None

    def predicate_id(self, name: str) -> int:
        try:
            return self.predicates.index(name)
        except ValueError:
            raise SceneGraphError(f"unknown predicate {name!r}; known: {list(self.predicates)}") from None

    def is_subject(self, class_name: str) -> bool:
        return not self.subject_classes or class_name in self.subject_classes

    @property
    def subject_mask(self) -> tuple[bool, ...]:
        """Per class id: may this class be a subject?"""
        return tuple(self.is_subject(c) for c in self.classes)

    def to_dict(self) -> dict:
        return {
            "classes": list(self.classes),
            "predicates": list(self.predicates),
            "subject_classes": list(self.subject_classes),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Vocabulary":
        return cls(
            classes=tuple(d["classes"]),
            predicates=tuple(d.get("predicates", PREDICATES)),
            subject_classes=tuple(d.get("subject_classes", ())),
        )


@dataclass
class SceneObject:
    """One detected or labelled object."""

    class_name: str
    class_id: int
    box: tuple[float, float, float, float]
    score: float = 1.0
    #: Ground-plane position (x, y, z) in the camera frame, metres; None when unknown.
    position: Optional[tuple[float, float, float]] = None
    #: 3-D size (height, width, length) in metres, when known (labels, reconstruction).
    size: Optional[tuple[float, float, float]] = None
    #: Fractions in [0, 1] for labels; 0 for predictions.
    truncation: float = 0.0
    occlusion: float = 0.0
    yaw: float = 0.0

    def to_dict(self) -> dict:
        d = {
            "class_name": self.class_name,
            "class_id": int(self.class_id),
            "box": [float(v) for v in self.box],
            "score": float(self.score),
        }
        if self.position is not None:
            d["position"] = [float(v) for v in self.position]
        if self.size is not None:
            d["size"] = [float(v) for v in self.size]
        if self.truncation or self.occlusion:
            d["truncation"], d["occlusion"] = float(self.truncation), float(self.occlusion)
        if self.yaw:
            d["yaw"] = float(self.yaw)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SceneObject":
        return cls(
            class_name=d["class_name"],
            class_id=int(d["class_id"]),
            box=_box4(d["box"]),
            score=float(d.get("score", 1.0)),
            position=tuple(d["position"]) if d.get("position") is not None else None,
            size=tuple(d["size"]) if d.get("size") is not None else None,
            truncation=float(d.get("truncation", 0.0)),
            occlusion=float(d.get("occlusion", 0.0)),
            yaw=float(d.get("yaw", 0.0)),
        )


@dataclass
class Relationship:
    """A directed edge ``objects[subject] --predicate--> objects[object]``."""

    subject: int
    object: int
    predicate: str
    predicate_id: int
    score: float = 1.0

    def to_dict(self) -> dict:
        return {
            "subject": int(self.subject),
            "object": int(self.object),
            "predicate": self.predicate,
            "predicate_id": int(self.predicate_id),
            "score": float(self.score),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Relationship":
        return cls(
            subject=int(d["subject"]),
            object=int(d["object"]),
            predicate=d["predicate"],
            predicate_id=int(d["predicate_id"]),
            score=float(d.get("score", 1.0)),
        )


@dataclass
class IgnoreRegion:
    """A labelled image region that holds no evaluated object (KITTI ``DontCare``, a type the class
    map ignores such as ``Truck``/``Misc``, an object the simulator's label filter drops as too small
    or too occluded). Evaluation only: a detection inside one (that matches no real object) is
    neither a true nor a false positive. It is not an object: training, relationships, statistics
    and the ROS messages never see it. Applies to detections of every class."""

    box: tuple[float, float, float, float]
    #: Where it came from: the KITTI type (``DontCare``, ``Truck``, ...) or ``label_filter``.
    kind: str = "DontCare"

    def to_dict(self) -> dict:
        return {"box": [float(v) for v in self.box], "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict) -> "IgnoreRegion":
        if len(d["box"]) != 4:
            raise SceneGraphError(f"ignore region box {d['box']!r} does not have 4 numbers")
        x1, y1, x2, y2 = (float(v) for v in d["box"])
        return cls(box=(x1, y1, x2, y2), kind=str(d.get("kind", "DontCare")))


@dataclass
class SceneGraph:
    """Objects and relationships of one image; what the model outputs and the labels hold.

    ``ignore_regions`` (labels only; empty for predictions and for files written before it
    existed) are evaluation-only regions, kept apart from ``objects`` so that no other consumer
    can mistake them for objects.
    """

    objects: list[SceneObject] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)
    image_width: int = 0
    image_height: int = 0
    #: Identity of the producer (checkpoint id / version); empty for labels.
    model_id: str = ""
    #: Vocabulary the class / predicate ids index (set by the Predictor and the simulator).
    vocab: Optional[Vocabulary] = None
    #: Regions whose detections evaluation neither rewards nor penalises (see :class:`IgnoreRegion`).
    ignore_regions: list[IgnoreRegion] = field(default_factory=list)

    def validate(self) -> "SceneGraph":
        """Raise SceneGraphError if an index is out of range or a box is malformed; return self."""
        n = len(self.objects)
        for i, o in enumerate(self.objects):
            if len(o.box) != 4 or not all(math.isfinite(v) for v in o.box):
                raise SceneGraphError(f"object {i} has a malformed box {o.box!r}")
            if o.box[2] < o.box[0] or o.box[3] < o.box[1]:
                raise SceneGraphError(f"object {i} box {o.box!r} has x_max < x_min or y_max < y_min")
        for k, r in enumerate(self.relationships):
            for role, idx in (("subject", r.subject), ("object", r.object)):
                if not 0 <= idx < n:
                    raise SceneGraphError(f"relationship {k} {role} index {idx} is out of range for {n} objects")
            if r.subject == r.object:
                raise SceneGraphError(f"relationship {k} relates object {r.subject} to itself")
        for i, g in enumerate(self.ignore_regions):
            if not isinstance(g, IgnoreRegion):
                raise SceneGraphError(f"ignore region {i} is a {type(g).__name__}, not an IgnoreRegion")
            if len(g.box) != 4 or not all(math.isfinite(v) for v in g.box):
                raise SceneGraphError(f"ignore region {i} has a malformed box {g.box!r}")
            if g.box[2] < g.box[0] or g.box[3] < g.box[1]:
                raise SceneGraphError(f"ignore region {i} box {g.box!r} has x_max < x_min or y_max < y_min")
        return self

    def triplets(self) -> list[tuple[str, str, str]]:
        """(subject class, predicate, object class) per relationship, for quick inspection."""
        return [
            (self.objects[r.subject].class_name, r.predicate, self.objects[r.object].class_name)
            for r in self.relationships
        ]

    def to_dict(self) -> dict:
        d = {
            "image_width": int(self.image_width),
            "image_height": int(self.image_height),
            "model_id": self.model_id,
            "objects": [o.to_dict() for o in self.objects],
            "relationships": [r.to_dict() for r in self.relationships],
        }
        if self.vocab is not None:
            d["vocab"] = self.vocab.to_dict()
        if self.ignore_regions:  # absent = none (older files and predictions look as before)
            d["ignore_regions"] = [g.to_dict() for g in self.ignore_regions]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SceneGraph":
        return cls(
            objects=[SceneObject.from_dict(o) for o in d.get("objects", [])],
            relationships=[Relationship.from_dict(r) for r in d.get("relationships", [])],
            image_width=int(d.get("image_width", 0)),
            image_height=int(d.get("image_height", 0)),
            model_id=d.get("model_id", ""),
            vocab=Vocabulary.from_dict(d["vocab"]) if d.get("vocab") else None,
            ignore_regions=[IgnoreRegion.from_dict(g) for g in d.get("ignore_regions") or []],
        ).validate()


def keep_objects(graph: "SceneGraph", keep: Sequence[int]) -> "SceneGraph":
    """``graph`` restricted to the objects ``keep`` (in that order), with the relationships among
    them re-indexed; relationships touching a dropped object are dropped."""
    remap = {old: new for new, old in enumerate(keep)}
    rels = [
        dataclasses.replace(r, subject=remap[r.subject], object=remap[r.object])
        for r in graph.relationships
        if r.subject in remap and r.object in remap
    ]
    return dataclasses.replace(graph, objects=[graph.objects[i] for i in keep], relationships=rels)


def spatial_predicate(subject_xz: Sequence[float], object_xz: Sequence[float]) -> str:
    """THE relationship rule (shared by simulator, KITTI import and evaluation).

    With dx = x_s - x_o and dz = z_s - z_o on the ground plane (camera frame, x right, z forward):
    if |dx| >= |dz| the predicate is ``left`` when dx < 0 else ``right``; otherwise ``front``
    when dz < 0 (the subject is nearer the camera) else ``behind``.
    """
    dx = float(subject_xz[0]) - float(object_xz[0])
    dz = float(subject_xz[1]) - float(object_xz[1])
    if abs(dx) >= abs(dz):
        return "left" if dx < 0 else "right"
    return "front" if dz < 0 else "behind"


def derive_relationships(objects: Iterable[SceneObject], vocab: Vocabulary) -> list[Relationship]:
    """One relationship per ordered pair (s, o), s != o, whose subject class is allowed.

    Objects need ``position`` (camera frame); those without one take part in no relationship.
    """
    objs = list(objects)
    rels: list[Relationship] = []
    for s, so in enumerate(objs):
        if so.position is None or not vocab.is_subject(so.class_name):
            continue
        for o, oo in enumerate(objs):
            if o == s or oo.position is None:
                continue
            pred = spatial_predicate((so.position[0], so.position[2]), (oo.position[0], oo.position[2]))
            rels.append(Relationship(s, o, pred, vocab.predicate_id(pred), 1.0))
    return rels
