"""~/markers: the scene graph as a MarkerArray (pure function, and perception_node over real DDS), and the
RViz configuration that shows it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy", reason="rclpy not importable: run `make setup` and `source scripts/env.sh`")

from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from sim2sg_ros.markers import class_sizes, scene_graph_markers  # noqa: E402
from sim2sg_ros.msg import Relationship, SceneGraph, SceneObject  # noqa: E402
from sim2sg_ros.params import PERCEPTION_NODE, SIM_CAMERA_PARAMS, spec_map  # noqa: E402
from sim2sg_ros.topics import DEBUG_IMAGE_TOPIC, IMAGE_TOPIC, MARKERS_TOPIC  # noqa: E402

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]
W, H = 320, 96
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
SHAPES = (Marker.CUBE, Marker.CYLINDER)


def _by(arr: MarkerArray, ns: str, kind=None) -> list:
    return [m for m in arr.markers if m.ns == ns and (kind is None or m.type == kind)]


def _graph(camera, boxes, classes, relationships) -> SceneGraph:
    """A SceneGraph message whose positions are ``camera``'s back-projected box bottoms (as the node fills them)."""
    g = SceneGraph()
    g.header.frame_id = "cam_optical"
    g.header.stamp.sec = 12
    ground = camera.backproject_to_ground([(b[0] + b[2]) / 2 for b in boxes], [b[3] for b in boxes])
    for k, (b, c, p) in enumerate(zip(boxes, classes, ground)):
        o = SceneObject(index=k, class_name=c, class_id={"car": 0, "pedestrian": 1}[c], score=0.5 + 0.1 * k)
        o.x_min, o.y_min, o.x_max, o.y_max = (float(v) for v in b)
        if np.all(np.isfinite(p)):
            o.position_valid = True
            o.position.x, o.position.y, o.position.z = (float(v) for v in p)
        g.objects.append(o)
    g.relationships = [Relationship(subject_index=s, object_index=o, predicate=p) for s, o, p in relationships]
    return g


@pytest.mark.parametrize("pitch", [0.0, 0.08])
def test_markers_stand_on_the_ground_under_the_box_in_the_optical_frame(pitch):
    """One body + label per positioned object, one arrow + predicate per relationship between positioned objects,
    DELETEALL first; each body's foot projects back onto its box's bottom centre through the pitched camera."""
    from sim2sg_core.geometry import Camera

    cam = Camera(fx=300.0, fy=300.0, cx=160.0, cy=40.0, width=W, height=H, height_m=1.6, pitch=pitch)
    boxes = [(20, 30, 80, 70), (150, 35, 170, 90), (200, 2, 260, 10)]  # the last one ends above the horizon
    g = _graph(cam, boxes, ["car", "pedestrian", "car"], [(0, 1, "left"), (0, 2, "front"), (1, 0, "right")])
    assert [o.position_valid for o in g.objects] == [True, True, False]
    arr = scene_graph_markers(g, pitch=pitch)

    assert arr.markers[0].action == Marker.DELETEALL and arr.markers[0].header.frame_id == "cam_optical"
    assert all(m.header.frame_id == "cam_optical" and m.header.stamp.sec == 12 for m in arr.markers)
    bodies, labels = _by(arr, "objects"), _by(arr, "labels", Marker.TEXT_VIEW_FACING)
    assert [m.id for m in bodies] == [0, 1] and [m.type for m in bodies] == [Marker.CUBE, Marker.CYLINDER]
    assert [m.text for m in labels] == ["car 0.50", "pedestrian 0.60"]
    arrows = _by(arr, "relationships", Marker.ARROW)
    assert [m.id for m in arrows] == [0, 2]  # the relationship to the unpositioned object has none
    assert [m.text for m in _by(arr, "predicates")] == ["left", "right"]
    sizes = class_sizes()
    assert sizes["car"] == (1.5, 1.75, 4.2)

    for m, b in zip(bodies, boxes):
        h = sizes[g.objects[m.id].class_name][0]
        q = m.pose.orientation
        # the body's "down" direction (level +y) in the optical frame, from its orientation
        rot = _quat_matrix(q.x, q.y, q.z, q.w)
        down = rot @ (np.array([0.0, 1.0, 0.0]) if m.type == Marker.CUBE else np.array([0.0, 0.0, 1.0]))
        foot = np.array([m.pose.position.x, m.pose.position.y, m.pose.position.z]) + down * h / 2.0
        u, v = cam.fx * foot[0] / foot[2] + cam.cx, cam.fy * foot[1] / foot[2] + cam.cy
        assert u == pytest.approx((b[0] + b[2]) / 2, abs=1e-6) and v == pytest.approx(b[3], abs=1e-6)
        assert abs(down[1]) == pytest.approx(math.cos(pitch), abs=1e-9)  # upright on the level ground
    # an arrow runs from its subject to its object
    a = arrows[0]
    s_body, o_body = bodies[0].pose.position, bodies[1].pose.position
    assert np.sign(a.points[1].x - a.points[0].x) == np.sign(o_body.x - s_body.x)
    assert a.points[0].z == pytest.approx(s_body.z + _lift_z(pitch, sizes, "car"), abs=1e-6)


def _lift_z(pitch, sizes, cls) -> float:
    """Optical-z shift between a body's centre and the arrow start (both straight above the same ground point)."""
    from sim2sg_ros.markers import ARROW_HEIGHT

    h = sizes[cls][0]
    return math.sin(pitch) * (-(ARROW_HEIGHT) + h / 2.0)


def _quat_matrix(x, y, z, w):
    from sim2sg_ros.tf_pose import quaternion_matrix

    return quaternion_matrix(x, y, z, w)


def test_no_positions_no_3d_markers_only_the_deleteall():
    from sim2sg_core.geometry import Camera

    cam = Camera(fx=300.0, fy=300.0, cx=160.0, cy=40.0, width=W, height=H, height_m=1.6, pitch=0.0)
    g = _graph(cam, [(10, 5, 50, 30)], ["car"], [])
    assert not g.objects[0].position_valid
    arr = scene_graph_markers(g)
    assert [m.action for m in arr.markers] == [Marker.DELETEALL]


def test_rviz_config_parses_and_shows_our_topics_in_the_sim_cameras_frame():
    path = REPO / "config" / "sim2sg.rviz"
    cfg = yaml.safe_load(path.read_text())
    vm = cfg["Visualization Manager"]
    displays = {d["Class"]: d for d in vm["Displays"] if d["Class"] != "rviz_default_plugins/Image"}
    images = [d["Topic"]["Value"] for d in vm["Displays"] if d["Class"] == "rviz_default_plugins/Image"]
    assert images == ["/" + IMAGE_TOPIC, DEBUG_IMAGE_TOPIC.replace("~", "/" + PERCEPTION_NODE)]
    markers = displays["rviz_default_plugins/MarkerArray"]
    assert markers["Topic"]["Value"] == MARKERS_TOPIC.replace("~", "/" + PERCEPTION_NODE)
    assert set(markers["Namespaces"]) == {"objects", "labels", "relationships", "predicates"}
    assert vm["Global Options"]["Fixed Frame"] == spec_map(SIM_CAMERA_PARAMS)["frame_id"].default
    assert all(d.get("Enabled", True) for d in vm["Displays"])
    share = REPO / "install" / "sim2sg_ros" / "share" / "sim2sg_ros"
    installed = share / "config" / "sim2sg.rviz"
    if share.is_dir():  # built by make setup (colcon)
        assert installed.read_text() == path.read_text(), "install space is stale: run make setup"


@pytest.mark.slow
def test_markers_over_dds_follow_each_graph_and_cost_nothing_unsubscribed(node_procs, ros_client, tiny_checkpoint):
    """perception_node publishes ~/markers only while subscribed; each array matches its graph: DELETEALL first, one
    body per positioned object, one arrow per relationship between positioned objects, in the image's frame."""
    from sim2sg_core.sim import Simulator
    from sim2sg_ros.msg import SceneGraph as SceneGraphMsg
    from sim2sg_ros.sim_camera_node import camera_info_msg
    from sim2sg_ros.conversions import rgb_to_image_msg

    ckpt, _ = tiny_checkpoint()
    sim = Simulator(env="drive", domain="target", seed=5, image_size=(W, H))
    graphs, arrays, diags = {}, [], []
    n = ros_client.node
    n.create_subscription(SceneGraphMsg, "/scene_graph", lambda m: graphs.__setitem__(m.header.stamp.sec, m), RELIABLE)
    from diagnostic_msgs.msg import DiagnosticArray

    n.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diags.extend(m.status), 10)
    per = node_procs(
        "perception_node",
        {
            "checkpoint": ckpt,
            "device": "cpu",
            "num_threads": 1,
            "diagnostics_period": 0.3,
            "reliable": True,
            "qos_depth": 10,
            "score_threshold": 0.0,
            "max_objects": 6,
        },
    )
    img_pub = n.create_publisher(Image, "/camera/image_raw", RELIABLE)
    info_pub = n.create_publisher(CameraInfo, "/camera/camera_info", RELIABLE)
    assert ros_client.spin_until(
        lambda: img_pub.get_subscription_count() >= 1 and info_pub.get_subscription_count() >= 1, 60, watch=[per]
    ), per.log()[-3000:]
    # a horizon high in the image (cy = 20 px): the untrained model's boxes end below it, so objects get positions
    from dataclasses import replace

    info = camera_info_msg(replace(sim.camera, cy=20.0), "cam_optical")

    def send(stamp: int) -> None:
        info_pub.publish(info)
        ros_client.spin_for(0.1)
        m = rgb_to_image_msg(sim.sample(stamp).image, "rgb8")
        m.header.stamp.sec, m.header.frame_id = stamp, "cam_optical"
        img_pub.publish(m)
        assert ros_client.spin_until(lambda: stamp in graphs, 60, watch=[per]), per.log()[-3000:]

    def last_diag() -> dict:
        return ros_client.diag_values(diags[-1]) if diags else {}

    send(1)  # nobody subscribes to the markers: none are built
    assert ros_client.spin_until(lambda: last_diag().get("frames_published") == "1", 30, watch=[per])
    assert last_diag()["markers_published"] == "0" and last_diag()["markers_mean_ms"] == "nan"

    n.create_subscription(MarkerArray, "/perception_node/markers", arrays.append, RELIABLE)
    assert ros_client.spin_until(lambda: _matched(n), 30, watch=[per])
    ros_client.spin_for(1.0)  # the node's side of the match, too
    stamps = list(range(10, 16))
    for s in stamps:
        send(s)
        assert ros_client.spin_until(lambda s=s: any(a.markers[0].header.stamp.sec == s for a in arrays), 30)
    assert [a.markers[0].header.stamp.sec for a in arrays] == stamps
    n_arrows = n_bodies = 0
    for a in arrays:
        g = graphs[a.markers[0].header.stamp.sec]
        assert a.markers[0].action == Marker.DELETEALL, "the previous frame's markers must be removed first"
        assert all(m.header.frame_id == "cam_optical" for m in a.markers)
        assert all(m.action == Marker.ADD for m in a.markers[1:])
        positioned = {o.index for o in g.objects if o.position_valid}
        bodies = [m for m in a.markers if m.type in SHAPES]
        assert sorted(m.id for m in bodies) == sorted(positioned)
        assert all(m.ns == "objects" for m in bodies)
        linked = [
            k for k, r in enumerate(g.relationships) if r.subject_index in positioned and r.object_index in positioned
        ]
        arrows = [m for m in a.markers if m.type == Marker.ARROW and m.action == Marker.ADD]
        assert sorted(m.id for m in arrows) == linked
        for m in arrows:
            r = g.relationships[m.id]
            s_obj = next(b for b in bodies if b.id == r.subject_index)
            assert m.points[0].x == pytest.approx(s_obj.pose.position.x, abs=1e-4)  # starts above its subject
        n_arrows += len(arrows)
        n_bodies += len(bodies)
    assert n_bodies > 0 and n_arrows > 0, "nothing positioned: the check above checked nothing"
    assert ros_client.spin_until(lambda: last_diag().get("markers_published") == str(len(stamps)), 30, watch=[per])
    assert float(last_diag()["markers_mean_ms"]) > 0.0
    assert per.alive()


def _matched(node) -> bool:
    return node.count_publishers("/perception_node/markers") >= 1
