"""perception_node end to end: separate OS processes over real DDS, each test on its own domain id."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not importable: run `make setup` and `source scripts/env.sh`")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from sim2sg_ros.msg import SceneGraph as SceneGraphMsg  # noqa: E402

pytestmark = pytest.mark.ros

W, H = 320, 96
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT)


def _perception_params(checkpoint: str, **kw) -> dict:
    p = {
        "checkpoint": checkpoint,
        "device": "cpu",
        "num_threads": 1,
        "diagnostics_period": 0.3,
        "reload_poll_period": 0.2,
    }
    p.update(kw)
    return p


def _camera_params(stamp_log, **kw) -> dict:
    p = {
        "env": "drive",
        "domain": "target",
        "seed": 3,
        "rate": 8.0,
        "width": W,
        "height": H,
        "cache_frames": 6,
        "stamp_log": str(stamp_log),
    }
    p.update(kw)
    return p


def _read_stamps(path) -> dict:
    """{stamp_ns: sample index} from the sim camera's stamp log."""
    out = {}
    for line in path.read_text().splitlines():
        sec, nsec, idx = line.split()
        out[int(sec) * 1_000_000_000 + int(nsec)] = int(idx)
    return out


class Collector:
    """Subscribes the test client to /scene_graph, /diagnostics and optionally the debug image."""

    def __init__(self, client, debug=False, graph_qos=BEST_EFFORT):
        self.client = client
        self.graphs, self.diags, self.debug = [], [], []
        n = client.node
        n.create_subscription(SceneGraphMsg, "/scene_graph", self.graphs.append, graph_qos)
        n.create_subscription(
            DiagnosticArray,
            "/diagnostics",
            lambda m: self.diags.extend(s for s in m.status if s.name.startswith("perception_node")),
            10,
        )
        if debug:
            n.create_subscription(Image, "/perception_node/debug_image", self.debug.append, 10)

    def last_diag(self) -> dict:
        return self.client.diag_values(self.diags[-1]) if self.diags else {}

    def graphs_after(self, n0: int):
        return self.graphs[n0:]


@pytest.mark.slow
def test_sim_camera_to_perception_stamps_positions_parameters_diagnostics(
    node_procs, ros_client, tiny_checkpoint, tmp_path
):
    """Sim camera (bgr8) → perception → this process: stamps match the images, ground positions are
    the back-projected box bottoms, thresholds change at run time, bad values are refused."""
    from sim2sg_core.sim import Simulator

    ckpt, model_id = tiny_checkpoint()
    stamp_log = tmp_path / "stamps.txt"
    col = Collector(ros_client, debug=True)
    cam = node_procs("sim_camera_node", _camera_params(stamp_log, encoding="bgr8"))
    per = node_procs(
        "perception_node",
        _perception_params(ckpt, score_threshold=0.0, max_objects=6, camera_height=1.65, camera_pitch=0.0),
    )
    assert ros_client.spin_until(
        lambda: len(col.graphs) >= 6 and col.debug and any(o.position_valid for o in col.graphs[-1].objects),
        120,
        watch=[cam, per],
    ), f"got {len(col.graphs)} graphs, {len(col.debug)} debug images\n{per.log()[-3000:]}"

    stamps = _read_stamps(stamp_log)
    camera = Simulator(env="drive", domain="target", seed=3, image_size=(W, H)).camera
    n_positions = 0
    # CameraInfo and images are separate topics: frames processed before the first CameraInfo
    # arrived carry no positions; from the first graph with one on, every graph must have them.
    first_with_info = next(k for k, g in enumerate(col.graphs) if any(o.position_valid for o in g.objects))
    for k, g in enumerate(col.graphs):
        assert ros_client.stamp_ns(g.header.stamp) in stamps, "graph stamp is not the stamp of a published image"
        assert g.header.frame_id == "camera_optical_frame"
        assert (g.image_width, g.image_height) == (W, H)
        assert g.model_id == model_id
        assert list(g.class_names) == ["car", "pedestrian", "vegetation", "house"]
        assert 1 <= len(g.objects) <= 6
        assert g.processing_time > 0.0
        for o in g.objects:
            assert 0 <= o.x_min <= o.x_max <= W and 0 <= o.y_min <= o.y_max <= H
            u, v = (o.x_min + o.x_max) / 2.0, o.y_max
            if k < first_with_info:
                continue
            if v > camera.cy + 1.0:  # below the horizon: must be on the ground, projecting back onto the box
                assert o.position_valid
                p = o.position
                assert p.y == pytest.approx(1.65) and p.z > 0
                assert camera.fx * p.x / p.z + camera.cx == pytest.approx(u, abs=1e-2)
                assert camera.fy * p.y / p.z + camera.cy == pytest.approx(v, abs=1e-2)
                n_positions += 1
            elif v < camera.cy - 1.0:
                assert not o.position_valid
    assert n_positions > 0, "no object below the horizon to check ground positions on"
    dbg = col.debug[-1]
    assert (dbg.width, dbg.height, dbg.encoding) == (W, H, "rgb8")
    assert ros_client.stamp_ns(dbg.header.stamp) in stamps

    # run-time parameters through the node's real parameter service
    res = ros_client.set_parameters("perception_node", score_threshold=1.5)
    assert not res[0].successful and "score_threshold" in (res[0].reason or "score_threshold")
    res = ros_client.set_parameters("perception_node", device="cuda")
    assert not res[0].successful, "device is read-only at run time"
    res = ros_client.set_parameters("perception_node", checkpoint=str(tmp_path / "missing.pt"))
    assert not res[0].successful and "does not exist" in res[0].reason

    def graphs_of_images_after(t_ns):
        # images stamped after the change were processed with the new values
        return [g for g in col.graphs if ros_client.stamp_ns(g.header.stamp) > t_ns]

    res = ros_client.set_parameters("perception_node", max_objects=2)
    assert res[0].successful, res[0].reason
    t_set = time.time_ns()
    assert ros_client.spin_until(lambda: len(graphs_of_images_after(t_set)) >= 3, 60, watch=[per])
    assert all(len(g.objects) <= 2 for g in graphs_of_images_after(t_set)), "max_objects=2 not applied at run time"
    res = ros_client.set_parameters("perception_node", score_threshold=1.0)
    assert res[0].successful
    t_set = time.time_ns()
    assert ros_client.spin_until(lambda: len(graphs_of_images_after(t_set)) >= 3, 60, watch=[per])
    assert all(len(g.objects) == 0 for g in graphs_of_images_after(t_set)), (
        "score_threshold=1.0 must remove every object"
    )

    assert ros_client.spin_until(lambda: int(col.last_diag().get("frames_published", 0)) >= 8, 30, watch=[per])
    d = col.last_diag()
    assert float(d["input_rate_hz"]) > 0 and float(d["output_rate_hz"]) > 0
    assert math.isfinite(float(d["latency_mean_ms"])) and math.isfinite(float(d["latency_p95_ms"]))
    assert d["model_id"] == model_id and d["frames_rejected"] == "0"
    assert per.alive() and cam.alive()
    assert per.stop() == 0 and cam.stop() == 0


@pytest.mark.slow
def test_compressed_path_survives_undecodable_jpeg(node_procs, ros_client, tiny_checkpoint, tmp_path):
    """Sim camera publishes JPEG CompressedImage; garbage 'JPEGs' on the same topic are rejected and
    counted, the good frames keep coming out with their stamps."""
    ckpt, model_id = tiny_checkpoint()
    stamp_log = tmp_path / "stamps.txt"
    col = Collector(ros_client)
    cam = node_procs("sim_camera_node", _camera_params(stamp_log, compressed=True, compressed_format="jpeg"))
    per = node_procs("perception_node", _perception_params(ckpt, compressed=True))
    assert ros_client.spin_until(lambda: len(col.graphs) >= 2, 120, watch=[cam, per]), per.log()[-3000:]

    bad = ros_client.node.create_publisher(CompressedImage, "/camera/image_raw/compressed", BEST_EFFORT)
    for k in range(8):
        m = CompressedImage(format="jpeg", data=b"\xff\xd8\xff\xe0 not really a jpeg " + bytes([k]) * 50)
        m.header.stamp.sec, m.header.stamp.nanosec = 7, k
        bad.publish(m)
        ros_client.spin_for(0.15)
    empty = CompressedImage(format="jpeg")
    empty.header.stamp.sec = 7
    bad.publish(empty)
    assert ros_client.spin_until(lambda: int(col.last_diag().get("frames_rejected", 0)) >= 1, 30, watch=[per])
    n0 = len(col.graphs)
    assert ros_client.spin_until(lambda: len(col.graphs) >= n0 + 3, 60, watch=[cam, per]), per.log()[-3000:]
    stamps = _read_stamps(stamp_log)
    assert all(ros_client.stamp_ns(g.header.stamp) in stamps for g in col.graphs)
    assert all(g.header.stamp.sec != 7 for g in col.graphs)
    assert all(g.model_id == model_id for g in col.graphs)
    assert "rejected frame" in per.log()
    assert per.alive()


def _good_image(rgb, stamp_sec):
    from sim2sg_ros.conversions import rgb_to_image_msg

    m = rgb_to_image_msg(rgb, "rgb8")
    m.header.stamp.sec = stamp_sec
    m.header.frame_id = "cam"
    return m


def _bad_images(rgb):
    """Frames that must be rejected, each with its own stamp (sec = 1000 + k)."""
    h, w = rgb.shape[:2]
    data = rgb.tobytes()
    frames = [
        Image(height=h, width=w, encoding="32FC3", step=w * 12, data=bytes(h * w * 12)),  # unsupported encoding
        Image(height=h, width=w, encoding="rgb8", step=w * 3 - 1, data=data),  # step < width * 3
        Image(height=h, width=w, encoding="rgb8", step=w * 3, data=data[: len(data) // 2]),  # data too short
        Image(height=h, width=w, encoding="rgb8", step=w * 3, data=b""),  # empty data
        Image(height=0, width=0, encoding="rgb8", step=0, data=b""),  # empty image
        Image(height=h, width=w, encoding="", step=w * 3, data=data),  # no encoding
    ]
    for k, f in enumerate(frames):
        f.header.stamp.sec = 1000 + k
    return frames


@pytest.mark.slow
def test_bad_frames_are_rejected_counted_and_the_node_lives_on(node_procs, ros_client, tiny_checkpoint):
    """Good and bad raw frames interleaved (reliable QoS, lock-step so nothing is dropped): every good
    frame yields exactly one graph with its stamp, every bad one is counted in /diagnostics."""
    from sim2sg_core.sim import Simulator

    ckpt, model_id = tiny_checkpoint()
    sim = Simulator(env="drive", domain="target", seed=5, image_size=(W, H))
    rgb = sim.sample(0).image
    col = Collector(ros_client, graph_qos=RELIABLE)
    per = node_procs("perception_node", _perception_params(ckpt, reliable=True, qos_depth=10, use_camera_info=False))
    pub = ros_client.node.create_publisher(Image, "/camera/image_raw", RELIABLE)
    assert ros_client.spin_until(lambda: pub.get_subscription_count() >= 1 and col.diags, 60, watch=[per]), per.log()[
        -3000:
    ]

    good_stamps, n_bad = [], 0
    for k, bad in enumerate(_bad_images(rgb)):
        stamp = 10 + k
        pub.publish(_good_image(sim.sample(k).image, stamp))
        good_stamps.append(stamp)
        assert ros_client.spin_until(
            lambda stamp=stamp: any(g.header.stamp.sec == stamp for g in col.graphs), 60, watch=[per]
        ), f"good frame {stamp} got no graph\n{per.log()[-3000:]}"
        pub.publish(bad)
        n_bad += 1
        assert ros_client.spin_until(
            lambda n_bad=n_bad: int(col.last_diag().get("frames_rejected", -1)) == n_bad, 30, watch=[per]
        ), f"bad frame {k} ({bad.encoding!r}) not counted: {col.last_diag()}"
    stamp = 99
    pub.publish(_good_image(rgb, stamp))
    assert ros_client.spin_until(lambda: any(g.header.stamp.sec == stamp for g in col.graphs), 60, watch=[per])
    good_stamps.append(stamp)

    assert sorted(g.header.stamp.sec for g in col.graphs) == sorted(good_stamps)
    assert all(g.header.frame_id == "cam" and g.model_id == model_id for g in col.graphs)
    d = col.last_diag()
    assert d["frames_rejected"] == str(n_bad) and d["frames_dropped"] == "0"
    assert per.alive()
    assert "rejected frame" in per.log()

    # a burst faster than the model: stale frames are dropped (counted), never queued; the newest
    # frame always comes out, and every received frame is accounted for
    n_before = len(col.graphs)
    burst = [500 + k for k in range(12)]
    for s in burst:
        pub.publish(_good_image(rgb, s))
    assert ros_client.spin_until(lambda: any(g.header.stamp.sec == burst[-1] for g in col.graphs), 60, watch=[per])
    assert ros_client.spin_until(
        lambda: int(col.last_diag().get("frames_published", 0)) == len(col.graphs), 30, watch=[per]
    )
    d = col.last_diag()
    out_burst = [g.header.stamp.sec for g in col.graphs[n_before:]]
    assert out_burst == sorted(out_burst) and set(out_burst) <= set(burst)  # in order, no stale re-ordering
    # (DDS itself may already discard part of a burst beyond the subscription's depth of 10)
    received = int(d["frames_received"])
    assert len(good_stamps) + n_bad < received <= len(good_stamps) + n_bad + len(burst)
    assert int(d["frames_published"]) + int(d["frames_dropped"]) + int(d["frames_rejected"]) == received
    assert int(d["frames_dropped"]) == received - len(good_stamps) - n_bad - len(out_burst)


@pytest.mark.slow
def test_hot_reload_swaps_models_and_survives_a_corrupt_file(node_procs, ros_client, tiny_checkpoint, tmp_path):
    ckpt, id_a = tiny_checkpoint("model.pt", seed=0)
    tiny_checkpoint("b.pt", seed=1)
    tiny_checkpoint("c.pt", seed=2)
    col = Collector(ros_client)
    stamp_log = tmp_path / "stamps.txt"
    cam = node_procs("sim_camera_node", _camera_params(stamp_log, rate=6.0, cache_frames=3))
    per = node_procs("perception_node", _perception_params(ckpt))
    assert ros_client.spin_until(lambda: any(g.model_id == id_a for g in col.graphs), 120, watch=[cam, per]), per.log()[
        -3000:
    ]

    def wait_model(mid, timeout=60):
        n0 = len(col.graphs)
        return ros_client.spin_until(lambda: any(g.model_id == mid for g in col.graphs[n0:]), timeout, watch=[cam, per])

    # 1. the file is replaced (atomic rename, as save_checkpoint does) → picked up by the poll.
    #    model ids are "<dir>/<stem>@<hash>"; the stem of b.pt differs, so copy its weights under model.pt.
    id_b_here = _replace_with(ckpt, tmp_path / "ckpt" / "b.pt")
    assert id_b_here != id_a
    assert wait_model(id_b_here), f"no graph from the replaced model\n{per.log()[-3000:]}"

    # 2. a corrupt file replaces it → old model keeps running, the error is reported
    with open(ckpt + ".tmp", "wb") as f:
        f.write(b"PK\x03\x04 this is not a checkpoint" * 10)
    os.replace(ckpt + ".tmp", ckpt)
    assert ros_client.spin_until(lambda: int(col.last_diag().get("model_load_failures", 0)) >= 1, 30, watch=[per])
    d = col.last_diag()
    assert ckpt in d["last_error"] and d["model_id"] == id_b_here
    assert wait_model(id_b_here), "the old model must keep serving after a bad reload"
    resp = ros_client.call(Trigger, "/perception_node/reload", Trigger.Request())
    assert not resp.success and ckpt in resp.message and "keeping model" in resp.message

    # 3. a good file again, loaded on request through ~/reload
    id_c_here = _replace_with(ckpt, tmp_path / "ckpt" / "c.pt")
    resp = ros_client.call(Trigger, "/perception_node/reload", Trigger.Request())
    assert resp.success, resp.message
    assert id_c_here in resp.message
    assert wait_model(id_c_here)
    assert per.alive()
    assert "keeping model" in per.log()


def _replace_with(target: str, source) -> str:
    """Atomically replace ``target`` by a copy of checkpoint ``source``; return the model id it gets there."""
    from sim2sg_core.train.checkpoint import load_checkpoint

    tmp = target + ".incoming"
    with open(source, "rb") as s, open(tmp, "wb") as d:
        d.write(s.read())
    os.replace(tmp, target)
    return load_checkpoint(target)["model_id"]


@pytest.mark.slow
def test_onnx_model_serves_and_hot_reloads_when_re_exported(node_procs, ros_client, tiny_checkpoint, tmp_path):
    """The checkpoint parameter takes an exported .onnx file (onnxruntime backend); exporting another
    model over it (relation graph first, then the main file, as export_onnx writes) swaps the model."""
    pytest.importorskip("onnxruntime", reason="pip install onnxruntime (make setup)")
    from sim2sg_core.model.onnx_backend import export_onnx, read_onnx_metadata

    ckpt_a, _ = tiny_checkpoint("a.pt", seed=0)
    ckpt_b, _ = tiny_checkpoint("b.pt", seed=1)
    onnx_path = tmp_path / "deploy" / "model.onnx"
    export_onnx(ckpt_a, onnx_path)
    id_a = read_onnx_metadata(onnx_path)["model_id"]
    col = Collector(ros_client)
    cam = node_procs("sim_camera_node", _camera_params(tmp_path / "stamps.txt", rate=6.0, cache_frames=3))
    per = node_procs("perception_node", _perception_params(str(onnx_path)))
    assert ros_client.spin_until(lambda: any(g.model_id == id_a for g in col.graphs), 120, watch=[cam, per]), per.log()[
        -3000:
    ]
    export_onnx(ckpt_b, onnx_path)
    id_b = read_onnx_metadata(onnx_path)["model_id"]
    assert id_b != id_a
    n0 = len(col.graphs)
    assert ros_client.spin_until(lambda: any(g.model_id == id_b for g in col.graphs[n0:]), 60, watch=[cam, per]), (
        per.log()[-3000:]
    )
    assert int(col.last_diag().get("model_load_failures", 0)) == 0 and per.alive()


@pytest.mark.slow
def test_backend_onnxruntime_serves_a_pt_checkpoint(node_procs, ros_client, tiny_checkpoint, tmp_path):
    """backend:=onnxruntime with a .pt checkpoint: exported in memory at load, graphs carry its model id."""
    pytest.importorskip("onnxruntime", reason="pip install onnxruntime (make setup)")
    ckpt, model_id = tiny_checkpoint("a.pt", seed=0)
    col = Collector(ros_client)
    cam = node_procs("sim_camera_node", _camera_params(tmp_path / "stamps.txt", rate=6.0, cache_frames=3))
    per = node_procs("perception_node", _perception_params(ckpt, backend="onnxruntime"))
    assert ros_client.spin_until(
        lambda: len(col.graphs) >= 2 and col.last_diag().get("backend"), 120, watch=[cam, per]
    ), per.log()[-3000:]
    assert all(g.model_id == model_id for g in col.graphs)
    assert col.last_diag()["backend"] == "onnxruntime"


@pytest.mark.slow
def test_half_precision_on_a_cpu_warns_once_and_serves_float32(node_procs, ros_client, tiny_checkpoint, tmp_path):
    """half_precision:=true is CUDA autocast; on a CPU the node says so and serves the same graphs in float32."""
    ckpt, model_id = tiny_checkpoint("a.pt", seed=0)
    col = Collector(ros_client)
    cam = node_procs("sim_camera_node", _camera_params(tmp_path / "stamps.txt", rate=6.0, cache_frames=3))
    per = node_procs("perception_node", _perception_params(ckpt, half_precision=True))
    assert ros_client.spin_until(lambda: len(col.graphs) >= 2, 120, watch=[cam, per]), per.log()[-3000:]
    assert all(g.model_id == model_id for g in col.graphs)
    assert per.log().count("half_precision is only used on CUDA") == 1
    assert all(math.isfinite(o.score) and 0.0 <= o.score <= 1.0 for g in col.graphs for o in g.objects)


@pytest.mark.slow
def test_two_cameras_run_side_by_side_in_two_namespaces(node_procs, ros_client, tiny_checkpoint, tmp_path):
    """Relative topic names: a camera + perception pair under /cam_front and another under /cam_rear publish
    /cam_front/scene_graph and /cam_rear/scene_graph, each from its own camera, and nothing on /scene_graph."""
    from sim2sg_ros.msg import SceneGraph as SceneGraphMsg

    ckpt, model_id = tiny_checkpoint()
    got: dict = {"cam_front": [], "cam_rear": [], "root": []}
    for key, topic in (
        ("cam_front", "/cam_front/scene_graph"),
        ("cam_rear", "/cam_rear/scene_graph"),
        ("root", "/scene_graph"),
    ):
        ros_client.node.create_subscription(SceneGraphMsg, topic, got[key].append, 10)
    procs = []
    for ns, seed in (("cam_front", 3), ("cam_rear", 4)):  # the same node names, told apart by namespace
        procs.append(
            node_procs(
                "sim_camera_node",
                _camera_params(tmp_path / f"{ns}.txt", seed=seed, rate=4.0, cache_frames=2, frame_id=ns),
                namespace=ns,
            )
        )
        procs.append(node_procs("perception_node", _perception_params(ckpt), namespace=ns))
    assert ros_client.spin_until(lambda: len(got["cam_front"]) >= 2 and len(got["cam_rear"]) >= 2, 150, watch=procs), (
        "\n".join(p.log()[-1500:] for p in procs)
    )
    assert not got["root"]
    assert {g.header.frame_id for g in got["cam_front"]} == {"cam_front"}
    assert {g.header.frame_id for g in got["cam_rear"]} == {"cam_rear"}
    assert all(g.model_id == model_id for g in got["cam_front"] + got["cam_rear"])


@pytest.mark.slow
def test_lifecycle_transitions_subscribe_only_when_active_and_free_the_model(
    node_procs, ros_client, tiny_checkpoint, tmp_path
):
    """autostart:=false: the node waits unconfigured; configure loads the model (still no subscription),
    activate subscribes and graphs flow, deactivate unsubscribes (model kept), cleanup frees the model."""
    from lifecycle_msgs.msg import State, Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    ckpt, model_id = tiny_checkpoint()
    col = Collector(ros_client)
    cam = node_procs("sim_camera_node", _camera_params(tmp_path / "stamps.txt", rate=6.0, cache_frames=3))
    per = node_procs("perception_node", _perception_params(ckpt, autostart=False))
    image_topic = "/camera/image_raw"

    def state() -> int:
        return ros_client.call(GetState, "/perception_node/get_state", GetState.Request()).current_state.id

    def change(transition: int) -> None:
        req = ChangeState.Request(transition=Transition(id=transition))
        assert ros_client.call(ChangeState, "/perception_node/change_state", req).success, per.log()[-3000:]

    def subscribers() -> int:
        return ros_client.node.count_subscribers(image_topic)

    assert ros_client.spin_until(lambda: col.diags, 60, watch=[cam, per]), per.log()[-3000:]
    assert state() == State.PRIMARY_STATE_UNCONFIGURED
    assert col.last_diag()["state"] == "unconfigured" and col.last_diag()["model_id"] == ""
    ros_client.spin_for(1.0)
    assert subscribers() == 0 and not col.graphs

    change(Transition.TRANSITION_CONFIGURE)
    assert state() == State.PRIMARY_STATE_INACTIVE
    assert ros_client.spin_until(lambda: col.last_diag().get("model_id") == model_id, 30, watch=[per])
    ros_client.spin_for(1.0)
    assert subscribers() == 0 and not col.graphs  # configured: model loaded, not listening

    change(Transition.TRANSITION_ACTIVATE)
    assert state() == State.PRIMARY_STATE_ACTIVE
    assert ros_client.spin_until(lambda: len(col.graphs) >= 2, 60, watch=[cam, per]), per.log()[-3000:]
    assert subscribers() >= 1 and all(g.model_id == model_id for g in col.graphs)

    change(Transition.TRANSITION_DEACTIVATE)
    assert state() == State.PRIMARY_STATE_INACTIVE
    assert ros_client.spin_until(lambda: subscribers() == 0, 10)
    ros_client.spin_for(0.5)
    n = len(col.graphs)
    ros_client.spin_for(1.5)
    assert len(col.graphs) == n  # no frames while inactive
    assert ros_client.spin_until(lambda: col.last_diag().get("state") == "inactive", 10)
    assert col.last_diag()["model_id"] == model_id  # deactivate keeps the model

    change(Transition.TRANSITION_CLEANUP)
    assert state() == State.PRIMARY_STATE_UNCONFIGURED
    assert ros_client.spin_until(
        lambda: col.last_diag().get("state") == "unconfigured" and col.last_diag().get("model_id") == "",
        10,
        watch=[per],
    )
    assert "model freed" in per.log() and per.alive()


@pytest.mark.slow
def test_ground_positions_scale_a_camera_info_of_another_size(node_procs, ros_client, tiny_checkpoint):
    """A driver calibrated at 2x the published resolution: the node scales K to the image before
    back-projecting, so positions equal those of the camera at the image's size."""
    from sensor_msgs.msg import CameraInfo
    from sim2sg_core.sim import Simulator
    from sim2sg_core.sim.scene import Camera

    ckpt, _ = tiny_checkpoint()
    rgb = Simulator(env="drive", domain="target", seed=5, image_size=(W, H)).sample(0).image
    col = Collector(ros_client, graph_qos=RELIABLE)
    per = node_procs(
        "perception_node",
        _perception_params(
            ckpt, reliable=True, qos_depth=10, score_threshold=0.0, camera_height=1.6, camera_pitch=0.05
        ),
    )
    img_pub = ros_client.node.create_publisher(Image, "/camera/image_raw", RELIABLE)
    info_pub = ros_client.node.create_publisher(CameraInfo, "/camera/camera_info", RELIABLE)
    assert ros_client.spin_until(
        lambda: img_pub.get_subscription_count() >= 1 and info_pub.get_subscription_count() >= 1, 60, watch=[per]
    ), per.log()[-3000:]
    at_image = Camera(fx=300.0, fy=290.0, cx=158.0, cy=50.0, width=W, height=H, height_m=1.6, pitch=0.05)
    for k, (iw, ih, scale) in enumerate(((2 * W, 2 * H, 2.0), (0, 0, 1.0))):  # 2x size; no size = the image's
        info = CameraInfo(width=iw, height=ih)
        info.k = [
            at_image.fx * scale,
            0.0,
            at_image.cx * scale,
            0.0,
            at_image.fy * scale,
            at_image.cy * scale,
            0.0,
            0.0,
            1.0,
        ]
        info_pub.publish(info)
        ros_client.spin_for(0.5)
        pub_stamp = 100 + k
        img_pub.publish(_good_image(rgb, pub_stamp))
        assert ros_client.spin_until(
            lambda s=pub_stamp: any(g.header.stamp.sec == s for g in col.graphs), 60, watch=[per]
        ), per.log()[-3000:]
        g = next(g for g in col.graphs if g.header.stamp.sec == pub_stamp)
        assert len(g.objects) > 0
        boxes = np.array([[o.x_min, o.y_min, o.x_max, o.y_max] for o in g.objects], dtype=np.float64)
        expected = at_image.backproject_to_ground((boxes[:, 0] + boxes[:, 2]) / 2.0, boxes[:, 3])
        on_ground = [(o, e) for o, e in zip(g.objects, expected) if np.all(np.isfinite(e))]
        assert on_ground, "no box reaches below the horizon: nothing checked"
        for o, e in on_ground:
            assert o.position_valid and np.allclose([o.position.x, o.position.y, o.position.z], e, atol=1e-3)
