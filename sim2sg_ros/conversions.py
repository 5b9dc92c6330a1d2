"""The only place that knows both worlds: core SceneGraph dataclass <-> sim2sg_ros/msg/SceneGraph,
and ROS images <-> RGB numpy arrays.
"""
from __future__ import annotations

from typing import Optional, Sequence

from sim2sg_core.scene_graph import (PREDICATES, Relationship, SceneGraph, SceneGraphError, SceneObject,
                                     Vocabulary)

__all__ = ["scene_graph_to_msg", "msg_to_scene_graph", "SceneGraphError"]


def scene_graph_to_msg(graph: SceneGraph, header=None, *, vocab: Optional[Vocabulary] = None,
                       model_version: str = "", processing_time: float = 0.0):
    """Build a ``sim2sg_ros/msg/SceneGraph`` from a core graph.

    ``header`` (std_msgs/Header) is copied as is: pass the source image's header so stamp and
    frame_id match. The vocabulary (``vocab`` or ``graph.vocab``) fills ``class_names`` and
    ``predicate_names`` so the message is self-describing. Raises SceneGraphError for an index out
    of range or a malformed box, before anything is published.
    """
    from geometry_msgs.msg import Point
    from sim2sg_ros.msg import Relationship as RelationshipMsg
    from sim2sg_ros.msg import SceneGraph as SceneGraphMsg
    from sim2sg_ros.msg import SceneObject as SceneObjectMsg

    graph.validate()
    vocab = vocab or graph.vocab
    msg = SceneGraphMsg()
    if header is not None:
        msg.header = header
    msg.image_width = int(graph.image_width)
    msg.image_height = int(graph.image_height)
    if vocab is not None:
        msg.class_names = list(vocab.classes)
        msg.predicate_names = list(vocab.predicates)
        msg.subject_class_names = list(vocab.subject_classes)
    msg.model_id = graph.model_id
    msg.model_version = model_version
    msg.processing_time = float(processing_time)
    objects = []
    for i, o in enumerate(graph.objects):
        m = SceneObjectMsg()
        m.index = i
        m.class_name = o.class_name
        m.class_id = int(o.class_id)
        m.score = float(o.score)
        m.x_min, m.y_min, m.x_max, m.y_max = (float(v) for v in o.box)
        if o.position is not None:
            m.position_valid = True
            m.position = Point(x=float(o.position[0]), y=float(o.position[1]), z=float(o.position[2]))
        objects.append(m)
    msg.objects = objects
    rels = []
    for r in graph.relationships:
        m = RelationshipMsg()
        m.subject_index = int(r.subject)
        m.object_index = int(r.object)
        m.predicate = r.predicate
        m.predicate_id = int(r.predicate_id)
        m.score = float(r.score)
        rels.append(m)
    msg.relationships = rels
    return msg


def msg_to_scene_graph(msg) -> SceneGraph:
    """Core graph from a ``sim2sg_ros/msg/SceneGraph``; rejects out-of-range indices with SceneGraphError."""
    vocab = None
    if msg.class_names:
        vocab = Vocabulary(classes=tuple(msg.class_names),
                           predicates=tuple(msg.predicate_names) or PREDICATES,
                           subject_classes=tuple(msg.subject_class_names))
    objects = []
    for i, m in enumerate(msg.objects):
        if m.index != i:
            raise SceneGraphError(f"SceneGraph message object {i} carries index {m.index}; "
                                  "indices must equal array positions")
        pos = (m.position.x, m.position.y, m.position.z) if m.position_valid else None
        objects.append(SceneObject(class_name=m.class_name, class_id=int(m.class_id),
                                   box=(m.x_min, m.y_min, m.x_max, m.y_max), score=float(m.score),
                                   position=pos))
    rels = [Relationship(subject=int(r.subject_index), object=int(r.object_index), predicate=r.predicate,
                         predicate_id=int(r.predicate_id), score=float(r.score)) for r in msg.relationships]
    graph = SceneGraph(objects=objects, relationships=rels, image_width=int(msg.image_width),
                       image_height=int(msg.image_height), model_id=msg.model_id, vocab=vocab)
    return graph.validate()

