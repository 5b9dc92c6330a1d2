"""SceneGraph dataclass <-> rosidl message, through real CDR serialization."""

import math

import numpy as np
import pytest

rclpy_serialization = pytest.importorskip(
    "rclpy.serialization", reason="rclpy not importable: run `make setup` and `source scripts/env.sh`"
)
from sim2sg_core.scene_graph import Relationship, SceneGraphError  # noqa: E402
from sim2sg_ros.conversions import msg_to_scene_graph, scene_graph_to_msg  # noqa: E402
from sim2sg_ros.msg import SceneGraph as SceneGraphMsg  # noqa: E402
from std_msgs.msg import Header  # noqa: E402


def f32(x):
    return float(np.float32(x))


def assert_same_graph(a, b):
    """b is a after a trip through float32 message fields."""
    assert (a.image_width, a.image_height, a.model_id) == (b.image_width, b.image_height, b.model_id)
    assert len(a.objects) == len(b.objects) and len(a.relationships) == len(b.relationships)
    for oa, ob in zip(a.objects, b.objects):
        assert (oa.class_name, oa.class_id) == (ob.class_name, ob.class_id)
        assert ob.box == tuple(f32(v) for v in oa.box)
        assert ob.score == f32(oa.score)
        assert ob.position == (None if oa.position is None else tuple(oa.position))
    for ra, rb in zip(a.relationships, b.relationships):
        assert (ra.subject, ra.object, ra.predicate, ra.predicate_id) == (
            rb.subject,
            rb.object,
            rb.predicate,
            rb.predicate_id,
        )
        assert rb.score == f32(ra.score)
    assert b.vocab == a.vocab


@pytest.mark.parametrize("n_objects,n_rels", [(0, 0), (1, 0), (300, 2000)])
def test_round_trip_through_serialized_message(graph_factory, n_objects, n_rels):
    graph = graph_factory.make_graph(n_objects, n_rels, seed=n_objects)
    header = Header(frame_id="camera_optical")
    header.stamp.sec, header.stamp.nanosec = 1_700_000_000, 123_456_789
    msg = scene_graph_to_msg(graph, header, model_version="0.1.0", processing_time=0.012)
    data = rclpy_serialization.serialize_message(msg)
    back_msg = rclpy_serialization.deserialize_message(data, SceneGraphMsg)
    assert back_msg.header.stamp.sec == 1_700_000_000 and back_msg.header.stamp.nanosec == 123_456_789
    assert back_msg.header.frame_id == "camera_optical"
    assert list(back_msg.class_names) == ["car", "pedestrian", "vegetation", "house"]
    assert list(back_msg.predicate_names) == ["front", "left", "right", "behind"]
    assert back_msg.model_version == "0.1.0" and math.isclose(back_msg.processing_time, 0.012, rel_tol=1e-6)
    assert [o.index for o in back_msg.objects] == list(range(n_objects))
    assert_same_graph(graph, msg_to_scene_graph(back_msg))


def test_position_validity_flag(graph_factory):
    graph = graph_factory.make_graph(6, 4, seed=3)
    msg = scene_graph_to_msg(graph)
    for o, m in zip(graph.objects, msg.objects):
        assert m.position_valid == (o.position is not None)
        if o.position is not None:
            assert (m.position.x, m.position.y, m.position.z) == o.position


def test_relationship_index_out_of_range_is_rejected_both_ways(graph_factory):
    graph = graph_factory.make_graph(3, 2, seed=1)
    graph.relationships.append(Relationship(0, 3, "left", 1, 0.5))
    with pytest.raises(SceneGraphError, match="relationship 2 object index 3 is out of range for 3 objects"):
        scene_graph_to_msg(graph)

    ok = graph_factory.make_graph(3, 2, seed=1)
    msg = scene_graph_to_msg(ok)
    msg.relationships[1].subject_index = 7
    with pytest.raises(SceneGraphError, match="relationship 1 subject index 7 is out of range"):
        msg_to_scene_graph(msg)


def test_object_index_must_equal_position(graph_factory):
    msg = scene_graph_to_msg(graph_factory.make_graph(2, 0))
    msg.objects[1].index = 0
    with pytest.raises(SceneGraphError, match="object 1 carries index 0"):
        msg_to_scene_graph(msg)
