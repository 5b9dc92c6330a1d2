"""perception_node: camera images in, ``sim2sg_ros/msg/SceneGraph`` out.

Design, in the order a frame meets it:

* The image callback only stores the message in a one-slot, keep-latest buffer and returns; if the
  slot was still full, the older frame is counted as *dropped*. Callbacks never block, so a slow
  model makes the node skip stale frames instead of building a queue (and latency).
* One inference thread takes the newest frame, decodes it (``conversions.image_msg_to_rgb``: a bad
  frame is counted as *rejected*, logged at most once per few seconds, and skipped), runs the
  current ``Predictor``, fills ground positions from CameraInfo when known, and publishes
  ``scene_graph`` (relative: ``/scene_graph``, or ``/<ns>/scene_graph`` in a namespace; names in
  ``sim2sg_ros/topics.py``) with the source image's header (and ``~/debug_image`` and ``~/markers``,
  ``sim2sg_ros/markers.py``, only while someone subscribes to them).
* The model is swapped between frames: a timer polls the checkpoint file (inode / mtime / size),
  ``~/reload`` (std_srvs/Trigger) forces a load, and setting the ``checkpoint`` parameter loads the
  new path. Loading happens off the executor thread; a file that fails to load leaves the old model
  running and the error in the log, the service response and ``/diagnostics``.
* ``/diagnostics`` carries input / output rates, latency (receive → publish), and the frame
  counters, once per ``diagnostics_period``; it turns to WARN "no frames for N s" when the camera has been
  silent for ``frame_timeout`` seconds, and back to OK when frames return. Its timers run on the steady
  clock, so they keep firing under ``use_sim_time`` while a bag is paused; stamps follow the node's clock.
"""

from __future__ import annotations

import collections
import gc
import os
import threading
import time
from typing import Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.task import Future
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from sim2sg_core.data.calibration import CalibrationError, camera_from_matrix
from sim2sg_ros import conversions
from sim2sg_ros.markers import scene_graph_markers
from sim2sg_ros.node_runtime import run_node
from sim2sg_ros.params import PERCEPTION_NODE, PERCEPTION_PARAMS, declare, spec_map, validate
from sim2sg_ros.tf_pose import TfCameraPose, tf2_available
from sim2sg_ros.topics import (
    DEBUG_IMAGE_TOPIC,
    DIAGNOSTICS_TOPIC,
    IMAGE_TOPIC,
    MARKERS_TOPIC,
    SCENE_GRAPH_TOPIC,
    camera_info_topic,
    image_qos,
    markers_qos,
    scene_graph_qos,
)

#: Thresholds that are copied onto the Predictor (and onto every newly loaded one).
RUNTIME_MODEL_PARAMS = ("score_threshold", "relation_threshold", "max_objects")
LOG_THROTTLE_S = 5.0


def file_signature(path: str) -> Optional[tuple]:
    """(inode, mtime_ns, size) of ``path``; None when it does not exist. Changes when a file is replaced."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class FrameStats:
    """Counters and a bounded latency window; rates are computed between two diagnostics reports."""

    def __init__(self, window: int = 300):
        self.lock = threading.Lock()
        self.received = self.processed = self.dropped = self.rejected = self.errors = 0
        self.no_model = 0
        self.latencies = collections.deque(maxlen=window)  # seconds, receive → publish
        self.inference = collections.deque(maxlen=window)  # seconds, predictor only
        self.markers = collections.deque(maxlen=window)  # seconds to build + publish one MarkerArray
        self.header_age = collections.deque(maxlen=window)  # seconds, node clock at publish − image stamp
        self.markers_published = 0
        self.last_frame: Optional[float] = None  # monotonic time of the latest image
        self._last = (time.monotonic(), 0, 0)

    def rates(self) -> tuple[float, float]:
        now = time.monotonic()
        with self.lock:
            t0, r0, p0 = self._last
            self._last = (now, self.received, self.processed)
            dt = max(now - t0, 1e-9)
            return (self.received - r0) / dt, (self.processed - p0) / dt


class PerceptionNode(LifecycleNode):
    """See the module docstring. Parameters: :data:`sim2sg_ros.params.PERCEPTION_PARAMS`.

    A managed (lifecycle) node: *configure* loads the model and starts the inference thread,
    *activate* subscribes to the camera, *deactivate* unsubscribes (the model stays loaded),
    *cleanup* frees the model. With ``autostart`` (the default) the node configures and activates
    itself at start-up, as a plain node would; with ``autostart:=false`` a lifecycle manager drives it
    (``lifecycle_msgs/srv/ChangeState`` on ``~/change_state``). Diagnostics run in every state.
    """

    def __init__(self, **node_kwargs):
        super().__init__(PERCEPTION_NODE, **node_kwargs)
        self._specs = spec_map(PERCEPTION_PARAMS)
        self.params = declare(self, PERCEPTION_PARAMS)
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)

        self.stats = FrameStats()
        # Model state: the predictor is replaced as a whole (attribute swap), read once per frame.
        self._predictor = None
        self._model_lock = threading.Lock()  # serialises loads
        self._model_path = ""
        self._model_signature: Optional[tuple] = None
        self._failed_signature: Optional[tuple] = None
        self._loading = False
        self.last_error = ""
        self.reloads = 0
        self.reload_failures = 0

        # Keep-latest slot shared by the image callback and the inference thread.
        self._cv = threading.Condition()
        self._pending = None
        self._running = False
        self._worker: Optional[threading.Thread] = None
        self._camera_info = None
        self._tf_pose = None  # TfCameraPose where tf2_ros imports and camera_pose_from_tf is set
        self.camera_pose_source = "parameters"
        self._viz = None
        self.last_reject = ""
        self._image_sub = self._info_sub = None
        self._graph_pub = self._debug_pub = self._marker_pub = self._reload_srv = self._poll_timer = None
        self._tf_pose = None
        self._pitch = float(self.params["camera_pitch"])  # the pitch the latest positions were computed with

        image_topic = self.resolve_topic_name(IMAGE_TOPIC)
        self.input_topic = image_topic + "/compressed" if self.params["compressed"] else image_topic
        self._diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        # steady clock: diagnostics (and the frame watchdog) keep running under use_sim_time with a paused bag
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._diag_timer = self.create_timer(
            self.params["diagnostics_period"], self._publish_diagnostics, clock=self._steady
        )
        self._version = _package_version()
        if self.params["autostart"]:
            self.trigger_configure()
            if self._running:  # configured (a missing or bad model still configures: hot reload)
                self.trigger_activate()

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.params["num_threads"] > 0:
            import torch

            torch.set_num_threads(int(self.params["num_threads"]))
        from sim2sg_ros.msg import SceneGraph as SceneGraphMsg

        self._graph_pub = self.create_lifecycle_publisher(SceneGraphMsg, SCENE_GRAPH_TOPIC, scene_graph_qos())
        self._debug_pub = self.create_lifecycle_publisher(Image, DEBUG_IMAGE_TOPIC, 1)
        self._marker_pub = self.create_lifecycle_publisher(MarkerArray, MARKERS_TOPIC, markers_qos())
        self._reload_srv = self.create_service(Trigger, "~/reload", self._on_reload_service)
        if self.params["reload_poll_period"] > 0:
            self._poll_timer = self.create_timer(
                self.params["reload_poll_period"], self._poll_checkpoint, clock=self._steady
            )
        # First model: loaded synchronously so a good configuration serves the first frame; a bad one
        # is reported and the node waits for a good file (hot reload) instead of failing.
        if self.params["checkpoint"]:
            ok, message = self.load_model(self.params["checkpoint"])
            self._log_outcome(ok, message)
        else:
            self.last_error = "no checkpoint configured (parameter 'checkpoint' is empty)"
            self.get_logger().error(self.last_error + "; set it (ros2 param set) to load a model")
        if self.params["camera_pose_from_tf"] and self.params["use_camera_info"]:
            ok, reason = tf2_available()
            if ok:
                self._tf_pose = TfCameraPose(self, self.params["base_frame"])
            else:
                self.get_logger().info(reason)
        self._running = True
        self._worker = threading.Thread(target=self._inference_loop, name="sim2sg-inference", daemon=True)
        self._worker.start()
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        reliable, depth = self.params["reliable"], self.params["qos_depth"]
        qos = image_qos(reliable, depth)
        msg_type = CompressedImage if self.params["compressed"] else Image
        self._image_sub = self.create_subscription(msg_type, self.input_topic, self._on_image, qos)
        if self.params["use_camera_info"]:
            info_topic = camera_info_topic(self.resolve_topic_name(IMAGE_TOPIC))
            # best effort matches reliable and best-effort publishers alike
            self._info_sub = self.create_subscription(CameraInfo, info_topic, self._on_camera_info, image_qos(False, 1))
        self.get_logger().info(
            f"listening on {self.input_topic} ({'reliable' if reliable else 'best effort'}, depth {depth}), "
            f"publishing {self.resolve_topic_name(SCENE_GRAPH_TOPIC)}"
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        for sub in (self._image_sub, self._info_sub):
            if sub is not None:
                self.destroy_subscription(sub)
        self._image_sub = self._info_sub = None
        with self._cv:
            self._pending = None  # a frame that arrived before deactivation is not processed
        self.get_logger().info(f"inactive: unsubscribed from {self.input_topic}; the model stays loaded")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info("cleaned up: model freed")
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.on_deactivate(state)
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        """Stop the inference thread, drop the model and what configure created."""
        self.close()
        if self._poll_timer is not None:
            self.destroy_timer(self._poll_timer)
        if self._reload_srv is not None:
            self.destroy_service(self._reload_srv)
        for pub in (self._graph_pub, self._debug_pub, self._marker_pub):
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
        self._graph_pub = self._debug_pub = self._marker_pub = self._reload_srv = self._poll_timer = None
        with self._model_lock:
            predictor, self._predictor = self._predictor, None
            self._model_path, self._model_signature, self._failed_signature = "", None, None
        device = getattr(predictor, "device", None)
        del predictor
        gc.collect()
        if device is not None and getattr(device, "type", "") == "cuda":
            import torch

            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ parameters
    def _validate_parameters(self, params) -> SetParametersResult:
        for p in params:
            spec = self._specs.get(p.name)
            if spec is None:
                continue
            problem = validate(spec, p.value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
            if p.name == "checkpoint" and p.value and not os.path.isfile(p.value):
                return SetParametersResult(successful=False, reason=f"checkpoint file {p.value} does not exist")
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params) -> None:
        for p in params:
            self.params[p.name] = p.value
            if p.name in RUNTIME_MODEL_PARAMS and self._predictor is not None:
                setattr(self._predictor, p.name, p.value)
                self.get_logger().info(f"{p.name} set to {p.value}")
            elif p.name == "checkpoint" and p.value and p.value != self._model_path and self._running:
                self._start_background_load(p.value)

    # ------------------------------------------------------------------ model loading
    def _log_outcome(self, ok: bool, message: str) -> None:
        # one call site per severity: rclpy refuses a log call site whose severity changes
        if ok:
            self.get_logger().info(message)
        else:
            self.get_logger().error(message)

    def load_model(self, path: str) -> tuple[bool, str]:
        """Load ``path`` and swap it in; on failure keep the current model. Returns (ok, message)."""
        with self._model_lock:
            signature = file_signature(path)
            try:
                if signature is None:
                    raise FileNotFoundError(f"checkpoint file {path} does not exist")
                predictor = self._build_predictor(path)
            except Exception as exc:  # noqa: BLE001 - CheckpointError, torch/ORT errors on a truncated file, OSError...
                self.reload_failures += 1
                self._failed_signature = signature
                what = exc if str(exc) else type(exc).__name__
                keep = (
                    f"; keeping model {self._predictor.model_id!r}"
                    if self._predictor is not None
                    else "; no model loaded, frames are skipped until a good checkpoint appears"
                )
                self.last_error = f"cannot load checkpoint {path}: {what}{keep}"
                return False, self.last_error
            old = self._predictor.model_id if self._predictor is not None else None
            self._predictor = predictor  # atomic swap: the worker reads it once per frame
            self._model_path = path
            self._model_signature = signature
            self._failed_signature = None
            self.last_error = ""
            self.reloads += 1
            verb = "loaded" if old is None else f"reloaded (was {old!r})"
            return True, f"{verb} model {predictor.model_id!r} from {path} on {self._device_name(predictor)}"

    def _build_predictor(self, path: str):
        from sim2sg_core.model.predictor import Predictor

        predictor = Predictor.from_checkpoint(
            path, device=self.params["device"], backend=self.params["backend"], threads=int(self.params["num_threads"])
        )
        w, h = self.params["input_width"], self.params["input_height"]
        if w and h and (int(w), int(h)) != predictor.input_size and predictor.backend == "onnxruntime":
            raise ValueError(
                f"input_width/input_height {w}x{h} differ from the ONNX graph's fixed input "
                f"{predictor.input_size[0]}x{predictor.input_size[1]}; set them to 0 or use backend torch"
            )
        if w and h:
            predictor.input_size = (int(w), int(h))
        predictor.amp = False
        if self.params["half_precision"]:
            self._enable_half(predictor)
        for name in RUNTIME_MODEL_PARAMS:
            setattr(predictor, name, self.params[name])
        return predictor

    def _enable_half(self, predictor) -> None:
        """Reduced precision = the Predictor's CUDA autocast; there is no CPU half path worth having."""
        if getattr(predictor, "device", None) is not None and predictor.device.type == "cuda":
            predictor.amp = True
        else:
            self.get_logger().warn("half_precision is only used on CUDA; running float32 on the CPU")

    @staticmethod
    def _device_name(predictor) -> str:
        return str(getattr(predictor, "device", "?"))

    def _start_background_load(self, path: str, force: bool = False) -> Optional[Future]:
        """``load_model(path)`` in a thread, its outcome logged; the returned future gets ``(ok, message)``
        and wakes the executor, so a coroutine awaiting it resumes at once. Without ``force`` nothing starts
        (None) while another background load runs: file polling and parameter changes do not stack loads."""
        if self._loading and not force:
            return None
        self._loading = True
        done: Future = Future()

        def work() -> None:
            try:
                ok, message = self.load_model(path)
                self._log_outcome(ok, message)
                done.set_result((ok, message))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits the future
                done.set_exception(exc)
            finally:
                self._loading = False
                executor = self.executor
                if executor is not None:
                    executor.wake()

        threading.Thread(target=work, name="sim2sg-reload", daemon=True).start()
        return done

    def _poll_checkpoint(self) -> None:
        path = self.params["checkpoint"]
        if not path or self._loading:
            return
        sig = file_signature(path)
        if sig is None or sig == self._model_signature or sig == self._failed_signature:
            return
        self.get_logger().info(f"checkpoint {path} changed on disk; reloading")
        self._start_background_load(path)

    async def _on_reload_service(self, request, response):
        """Load in a thread and await it: the node spins one executor thread (rclpy's multi-threaded
        executor busy-loops in Python and starved the frames: 7 Hz of a 30 Hz camera reached the node),
        so the coroutine keeps frames flowing while a model loads; the reply says how the load went."""
        path = self.params["checkpoint"]
        if not path:
            response.success, response.message = False, "parameter 'checkpoint' is empty; nothing to load"
            return response
        done = self._start_background_load(path, force=True)
        assert done is not None  # forced: always started
        ok, message = await done
        response.success, response.message = ok, message
        return response

    # ------------------------------------------------------------------ frames
    def _on_image(self, msg) -> None:
        t = time.monotonic()
        with self._cv:
            with self.stats.lock:
                self.stats.received += 1
                if self._pending is not None:
                    self.stats.dropped += 1  # the older frame never reached the model
                self.stats.last_frame = t
            self._pending = (msg, t)
            self._cv.notify()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _inference_loop(self) -> None:
        while True:
            with self._cv:
                while self._pending is None and self._running:
                    self._cv.wait(timeout=0.5)
                if not self._running:
                    return
                msg, t_recv = self._pending
                self._pending = None
            try:
                self._process(msg, t_recv)
            except Exception as exc:  # noqa: BLE001 - never let one frame kill the pipeline
                if not self.context.ok():
                    return  # shutting down (SIGINT): the publishers are gone, nothing to report
                with self.stats.lock:
                    self.stats.errors += 1
                self.get_logger().error(
                    f"frame processing failed: {type(exc).__name__}: {exc}", throttle_duration_sec=LOG_THROTTLE_S
                )

    def _process(self, msg, t_recv: float) -> None:
        try:
            rgb = conversions.image_msg_to_rgb(msg)
        except ValueError as exc:  # ImageDecodeError is a ValueError
            with self.stats.lock:
                self.stats.rejected += 1
            self.last_reject = str(exc)
            self.get_logger().warn(
                f"rejected frame (stamp {msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}): {exc}",
                throttle_duration_sec=LOG_THROTTLE_S,
            )
            return
        predictor = self._predictor
        if predictor is None:
            with self.stats.lock:
                self.stats.no_model += 1
            return
        t0 = time.monotonic()
        graph = predictor.predict([rgb])[0]
        t_inf = time.monotonic() - t0
        self._fill_positions(graph, rgb.shape[1], rgb.shape[0])
        out = conversions.scene_graph_to_msg(
            graph, msg.header, vocab=graph.vocab or getattr(predictor, "vocab", None), model_version=self._version
        )
        out.processing_time = float(time.monotonic() - t_recv)
        self._graph_pub.publish(out)
        latency = time.monotonic() - t_recv
        # the graph's age on the node's clock (simulated under use_sim_time): right only when stamps and clock agree
        age = (self.get_clock().now().nanoseconds - _stamp_ns(msg.header.stamp)) / 1e9
        with self.stats.lock:
            self.stats.processed += 1
            self.stats.latencies.append(latency)
            self.stats.inference.append(t_inf)
            self.stats.header_age.append(age)
        if self.params["markers"] and self._marker_pub.get_subscription_count() > 0:
            t_m = time.monotonic()
            self._marker_pub.publish(scene_graph_markers(out, pitch=self._pitch))
            with self.stats.lock:
                self.stats.markers.append(time.monotonic() - t_m)
                self.stats.markers_published += 1
        if self.params["debug_image"] and self._debug_pub.get_subscription_count() > 0:
            self._publish_debug(rgb, graph, msg.header)

    def _fill_positions(self, graph, width: int, height: int) -> None:
        """Back-project each box's bottom centre onto the flat ground (level camera frame, metres)."""
        if not graph.objects:
            return
        cam = self._camera_for(width, height)
        if cam is None:
            return
        boxes = np.array([o.box for o in graph.objects], dtype=np.float64)
        ground = cam.backproject_to_ground((boxes[:, 0] + boxes[:, 2]) / 2.0, boxes[:, 3])
        for obj, p in zip(graph.objects, ground):
            obj.position = tuple(float(v) for v in p) if np.all(np.isfinite(p)) else None

    def _camera_for(self, width: int, height: int):
        """The latest CameraInfo as a camera for a ``width``×``height`` image: intrinsics scaled by the
        image/calibration size ratio (a driver may calibrate at full resolution and publish binned
        images); a CameraInfo without a size is taken at the image's. None without a usable CameraInfo."""
        info = self._camera_info
        if info is None:
            return None
        w, h = (info.width, info.height) if info.width and info.height else (width, height)
        height_m, pitch = float(self.params["camera_height"]), float(self.params["camera_pitch"])
        pose = (
            self._tf_pose.lookup(info.header.frame_id) if self._tf_pose is not None and info.header.frame_id else None
        )
        if pose is not None and pose[0] > 0:
            height_m, pitch = pose
        self._pitch = float(pitch)
        self.camera_pose_source = "tf" if pose is not None and pose[0] > 0 else "parameters"
        try:
            cam = camera_from_matrix(info.k, w, h, height_m=height_m, pitch=pitch, where="camera_info")
        except CalibrationError as exc:  # e.g. an uncalibrated camera's all-zero K
            self.get_logger().warn(f"no ground positions: {exc}", throttle_duration_sec=LOG_THROTTLE_S)
            return None
        return cam.scaled(width, height)

    def _publish_debug(self, rgb, graph, header) -> None:
        if self._viz is None:
            try:
                from sim2sg_core.viz import draw_scene_graph

                self._viz = draw_scene_graph
            except ImportError as exc:
                self._viz = False
                self.get_logger().warn(f"debug image disabled: {exc}")
        if not self._viz:
            return
        self._debug_pub.publish(conversions.rgb_to_image_msg(self._viz(rgb, graph), "rgb8", header))

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        in_rate, out_rate = self.stats.rates()
        with self.stats.lock:
            lat = np.array(self.stats.latencies, dtype=np.float64)
            inf = np.array(self.stats.inference, dtype=np.float64)
            mk = np.array(self.stats.markers, dtype=np.float64)
            age = np.array(self.stats.header_age, dtype=np.float64)
            last_frame = self.stats.last_frame
            counters = dict(
                frames_received=self.stats.received,
                frames_published=self.stats.processed,
                frames_dropped=self.stats.dropped,
                frames_rejected=self.stats.rejected,
                frames_without_model=self.stats.no_model,
                frame_errors=self.stats.errors,
                markers_published=self.stats.markers_published,
            )
        status = DiagnosticStatus(
            name=f"{self.get_fully_qualified_name().lstrip('/')}: scene graph pipeline", hardware_id="sim2sg_ros"
        )
        predictor = self._predictor
        silent = time.monotonic() - last_frame if last_frame is not None else float("inf")
        if predictor is None:
            status.level, status.message = DiagnosticStatus.ERROR, self.last_error or "no model loaded"
        elif self.last_error:
            status.level, status.message = DiagnosticStatus.WARN, self.last_error
        elif self._image_sub is None:
            status.level, status.message = DiagnosticStatus.WARN, f"inactive: not subscribed to {self.input_topic}"
        elif last_frame is None:
            status.level, status.message = DiagnosticStatus.WARN, f"no images on {self.input_topic} yet"
        elif silent > self.params["frame_timeout"]:
            status.level = DiagnosticStatus.WARN
            status.message = f"no frames for {silent:.0f} s on {self.input_topic}"
        else:
            status.level, status.message = DiagnosticStatus.OK, "running"
        values = {
            "input_rate_hz": f"{in_rate:.2f}",
            "output_rate_hz": f"{out_rate:.2f}",
            "latency_mean_ms": f"{lat.mean() * 1e3:.2f}" if lat.size else "nan",
            "latency_p95_ms": f"{np.percentile(lat, 95) * 1e3:.2f}" if lat.size else "nan",
            "inference_mean_ms": f"{inf.mean() * 1e3:.2f}" if inf.size else "nan",
            "markers_mean_ms": f"{mk.mean() * 1e3:.3f}" if mk.size else "nan",
            "header_age_mean_ms": f"{age.mean() * 1e3:.2f}" if age.size else "nan",
            "seconds_since_last_frame": f"{silent:.2f}" if last_frame is not None else "inf",
            **{k: str(v) for k, v in counters.items()},
            "model_id": predictor.model_id if predictor is not None else "",
            "backend": predictor.backend if predictor is not None else "",
            "checkpoint": self._model_path,
            "model_loads": str(self.reloads),
            "model_load_failures": str(self.reload_failures),
            "last_error": self.last_error,
            "input_topic": self.input_topic,
            "camera_pose_source": self.camera_pose_source,
            "state": "active" if self._image_sub is not None else ("inactive" if self._running else "unconfigured"),
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(arr)

    def close(self) -> None:
        """Stop the inference thread (idempotent)."""
        with self._cv:
            self._running = False
            self._cv.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
            self._worker = None


def _stamp_ns(stamp) -> int:
    """A builtin_interfaces/Time as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _package_version() -> str:
    try:
        from sim2sg_core import __version__

        return f"sim2sg_ros {__version__}"
    except ImportError:
        return "sim2sg_ros"


def main(args=None) -> int:
    """``ros2 run sim2sg_ros perception_node [--ros-args ...]``."""
    return run_node(PerceptionNode, args)


if __name__ == "__main__":
    import sys

    sys.exit(main())
