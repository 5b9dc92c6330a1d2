"""Node parameters in one place: name, default, description, range, read-only flag.

The nodes declare their parameters from these tables (with ``ParameterDescriptor`` ranges, so ROS
itself rejects out-of-range values, from YAML or at run time); :func:`validate` adds the checks a
range cannot express (choices, paths). The bring-up script and the tests read the same tables, so
the defaults, the YAML files in ``config/`` and the documentation cannot drift apart.
"""

from __future__ import annotations

import copy

from dataclasses import dataclass
from typing import Any, Optional, Sequence

#: Node names: also the top-level keys of config/perception.yaml and config/adaptation.yaml.
PERCEPTION_NODE = "perception_node"
ADAPTATION_NODE = "adaptation_node"
SIM_CAMERA_NODE = "sim_camera_node"


@dataclass(frozen=True)
class ParamSpec:
    """One declared ROS parameter."""

    name: str
    default: Any
    description: str
    #: Inclusive (min, max) for int / float parameters.
    range: Optional[tuple] = None
    #: Allowed values for string parameters.
    choices: Optional[tuple] = None
    #: Read-only parameters are fixed at start-up (they need a restart: QoS, topics, device).
    read_only: bool = False

    def describe(self) -> str:
        extra = []
        if self.range is not None:
            extra.append(f"range [{self.range[0]}, {self.range[1]}]")
        if self.choices is not None:
            extra.append("one of " + "|".join(self.choices))
        if self.read_only:
            extra.append("read-only at run time")
        return self.description + (f" ({'; '.join(extra)})" if extra else "")


PERCEPTION_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "autostart",
        True,
        "Configure and activate at start-up (a plain node's behaviour); false = wait for a "
        "lifecycle manager (lifecycle_msgs/srv/ChangeState on ~/change_state)",
        read_only=True,
    ),
    ParamSpec(
        "checkpoint",
        "",
        "Model file: a .pt checkpoint or an exported .onnx graph. Replacing the file, "
        "setting this parameter or calling ~/reload loads the new model between frames; a bad file keeps "
        "the old model.",
    ),
    ParamSpec("device", "auto", "Inference device", choices=("auto", "cpu", "cuda"), read_only=True),
    ParamSpec(
        "backend",
        "auto",
        "Inference backend: torch, or onnxruntime (a .pt checkpoint is exported to an "
        "in-memory ONNX graph at load); auto = onnxruntime for .onnx files, torch otherwise",
        choices=("auto", "torch", "onnxruntime"),
        read_only=True,
    ),
    ParamSpec("score_threshold", 0.3, "Minimum object score to report", range=(0.0, 1.0)),
    ParamSpec("relation_threshold", 0.0, "Minimum relationship score to report", range=(0.0, 1.0)),
    ParamSpec("max_objects", 32, "Keep at most this many objects per image", range=(1, 512)),
    ParamSpec(
        "input_width", 0, "Network input width in pixels; 0 = the checkpoint's own", range=(0, 4096), read_only=True
    ),
    ParamSpec(
        "input_height", 0, "Network input height in pixels; 0 = the checkpoint's own", range=(0, 4096), read_only=True
    ),
    ParamSpec(
        "half_precision", False, "Run the model in float16 (CUDA only; ignored with a warning on CPU)", read_only=True
    ),
    ParamSpec(
        "debug_image", True, "Publish ~/debug_image (boxes and relationship arrows) while someone subscribes to it"
    ),
    ParamSpec(
        "markers",
        True,
        "Publish ~/markers (visualization_msgs/MarkerArray: objects, labels, relationship arrows) while someone "
        "subscribes to it",
    ),
    ParamSpec(
        "frame_timeout",
        2.0,
        "Seconds without an image (while active) after which /diagnostics turns to WARN 'no frames for N s'",
        range=(0.1, 3600.0),
    ),
    ParamSpec(
        "compressed",
        False,
        "Subscribe to sensor_msgs/CompressedImage on <image topic>/compressed instead of sensor_msgs/Image",
        read_only=True,
    ),
    ParamSpec(
        "reliable",
        False,
        "Reliable QoS for the image subscription (default: sensor-data QoS, best effort)",
        read_only=True,
    ),
    ParamSpec("qos_depth", 1, "History depth of the image subscription", range=(1, 100), read_only=True),
    ParamSpec(
        "use_camera_info", True, "Subscribe to camera_info and fill the objects' ground positions", read_only=True
    ),
    ParamSpec(
        "camera_pose_from_tf",
        True,
        "Read the camera's height and pitch from tf (base_frame -> the "
        "camera_info frame_id) where tf2_ros is available; the two parameters below are the fallback",
        read_only=True,
    ),
    ParamSpec("base_frame", "base_footprint", "Ground-level robot frame for the tf lookup (REP 105)", read_only=True),
    ParamSpec(
        "camera_height",
        1.65,
        "Camera height above the flat ground in metres (for ground positions)",
        range=(0.05, 20.0),
    ),
    ParamSpec(
        "camera_pitch", 0.0, "Camera pitch, radians, positive looking down (for ground positions)", range=(-1.0, 1.0)
    ),
    ParamSpec(
        "reload_poll_period",
        1.0,
        "Seconds between checks of the checkpoint file for replacement; 0 disables polling",
        range=(0.0, 3600.0),
        read_only=True,
    ),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages", range=(0.1, 60.0), read_only=True),
    ParamSpec("num_threads", 0, "torch CPU threads for inference; 0 = torch's default", range=(0, 256), read_only=True),
)

SIM_CAMERA_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("env", "drive", "Simulator environment", read_only=True),
    ParamSpec("domain", "target", "Simulator domain (source, randomized, target, target2)", read_only=True),
    ParamSpec("seed", 0, "Simulator seed; frame i is sample i of this seed", range=(0, 2**31 - 1), read_only=True),
    ParamSpec("rate", 10.0, "Frames per second", range=(0.1, 1000.0), read_only=True),
    ParamSpec("width", 0, "Image width; 0 = the environment's default", range=(0, 4096), read_only=True),
    ParamSpec("height", 0, "Image height; 0 = the environment's default", range=(0, 4096), read_only=True),
    ParamSpec(
        "encoding",
        "rgb8",
        "sensor_msgs/Image encoding to publish",
        choices=("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "rgb16", "bgr16"),
        read_only=True,
    ),
    ParamSpec("compressed", False, "Publish sensor_msgs/CompressedImage on <topic>/compressed instead", read_only=True),
    ParamSpec("compressed_format", "jpeg", "Format of the compressed images", choices=("jpeg", "png"), read_only=True),
    ParamSpec("frame_id", "camera_optical_frame", "header.frame_id of images and camera info", read_only=True),
    ParamSpec(
        "num_frames", 0, "Stop after this many frames (0 = run until shut down)", range=(0, 2**31 - 1), read_only=True
    ),
    ParamSpec(
        "cache_frames",
        64,
        "Pre-render this many distinct frames and cycle through them (0 = render every frame live)",
        range=(0, 100000),
        read_only=True,
    ),
    ParamSpec("reliable", False, "Reliable QoS (default: sensor-data QoS, best effort)", read_only=True),
    ParamSpec("qos_depth", 1, "History depth of the publishers", range=(1, 100), read_only=True),
    ParamSpec(
        "stamp_log",
        "",
        "If set, append '<sec> <nanosec>' of every published image to this file (for tests and benchmarks)",
        read_only=True,
    ),
)

ADAPTATION_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "bags", [], "rosbag2 bag paths (folders or .mcap / .db3 files) with unlabelled target images", read_only=True
    ),
    ParamSpec("topic", "/camera/image_raw", "Image topic in the bags (Image or CompressedImage)", read_only=True),
    ParamSpec("init_checkpoint", "", "Source-trained checkpoint to start from", read_only=True),
    ParamSpec("output_checkpoint", "", "Where to write the adapted checkpoint (atomically)", read_only=True),
    ParamSpec("adapt_config", "", "Core adaptation config YAML; empty = config/adapt/default.yaml", read_only=True),
    ParamSpec("rounds", 0, "Override: adaptation rounds (0 = from adapt_config)", range=(0, 1000), read_only=True),
    ParamSpec(
        "steps_per_round", 0, "Override: steps per round (0 = from adapt_config)", range=(0, 1000000), read_only=True
    ),
    ParamSpec("batch_size", 0, "Override: batch size (0 = from adapt_config)", range=(0, 1024), read_only=True),
    ParamSpec(
        "max_target_images",
        -1,
        "Override: most target images used (-1 = from adapt_config, 0 = all)",
        range=(-1, 10000000),
        read_only=True,
    ),
    ParamSpec(
        "device",
        "",
        "Override: device (empty = from adapt_config)",
        choices=("", "auto", "cpu", "cuda"),
        read_only=True,
    ),
    ParamSpec("num_threads", 0, "Override: torch CPU threads (0 = from adapt_config)", range=(0, 256), read_only=True),
    ParamSpec(
        "camera_height",
        -1.0,
        "Target camera height above the ground in metres, with camera_pitch: the "
        "pose label alignment lifts and renders scenes with (<= 0 = from adapt_config / the source pose)",
        range=(-1.0, 100.0),
        read_only=True,
    ),
    ParamSpec(
        "camera_pitch",
        0.0,
        "Target camera pitch, radians, positive looking down (used when camera_height > 0)",
        range=(-1.5, 1.5),
        read_only=True,
    ),
    ParamSpec(
        "camera_info",
        "",
        "Target camera calibration file (ROS camera_info YAML or KITTI calib .txt) "
        "label alignment renders through; empty = the CameraInfo recorded in the bags, if any",
        read_only=True,
    ),
    ParamSpec("resume", True, "Resume from an interrupted run's state next to the output checkpoint", read_only=True),
)

TABLES = {PERCEPTION_NODE: PERCEPTION_PARAMS, SIM_CAMERA_NODE: SIM_CAMERA_PARAMS, ADAPTATION_NODE: ADAPTATION_PARAMS}


def spec_map(specs: Sequence[ParamSpec]) -> dict:
    return {s.name: s for s in specs}


def validate(spec: ParamSpec, value: Any) -> Optional[str]:
    """Return a sentence explaining why ``value`` is not acceptable for ``spec``, or None if it is.

    Ranges are also enforced by ROS through the descriptor; they are re-checked here so that code
    paths without a descriptor (bring-up, tests) give the same answer.
    """
    problem = _type_problem(spec, value)
    if problem:
        return problem
    if spec.choices is not None and value not in spec.choices:
        return f"parameter {spec.name!r} must be one of {list(spec.choices)}, got {value!r}"
    if spec.range is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = spec.range
        if not lo <= value <= hi:
            return f"parameter {spec.name!r} must be in [{lo}, {hi}], got {value!r}"
    return None


def _type_problem(spec: ParamSpec, value: Any) -> Optional[str]:
    """Why ``value`` has the wrong type for ``spec`` (None if fine). A float parameter takes any number, an
    integer one only integers, a list one a list or one string (floats and lists are declared with dynamic typing, see
    :func:`declare`, so this check is what keeps their type)."""
    d = spec.default
    if isinstance(d, bool):
        ok = isinstance(value, bool)
    elif isinstance(d, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(d, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(d, str):
        ok = isinstance(value, str)
    elif isinstance(d, (list, tuple)):
        ok = isinstance(value, (list, tuple, str))  # a single string means a one-element list
    else:
        ok = True
    return None if ok else f"parameter {spec.name!r} must be a {type(d).__name__}, got {value!r}"


def declare(node, specs: Sequence[ParamSpec], overrides: Optional[dict] = None) -> dict:
    """Declare ``specs`` on ``node`` with descriptors; return {name: value} after YAML/CLI overrides.

    Raises ValueError with one sentence naming the parameter when a start-up value is invalid.
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
    from rclpy.parameter import Parameter

    # YAML `rate: 15` for a float parameter is an INTEGER override, which rclpy refuses for a statically
    # typed DOUBLE parameter, and `paths: one.bag` a STRING for a list: float and list parameters are
    # declared with dynamic typing (their type is checked by `validate`) and then set to the value they
    # obviously mean, through public rclpy calls only.
    values = {}
    for s in specs:
        d = ParameterDescriptor(description=s.describe(), read_only=s.read_only)
        if s.range is not None:
            if isinstance(s.default, float):
                d.floating_point_range = [
                    FloatingPointRange(from_value=float(s.range[0]), to_value=float(s.range[1]), step=0.0)
                ]
            else:
                d.integer_range = [IntegerRange(from_value=int(s.range[0]), to_value=int(s.range[1]), step=1)]
        if s.choices is not None:
            d.additional_constraints = "one of: " + ", ".join(repr(c) for c in s.choices)
        default = (overrides or {}).get(s.name, s.default)
        loose = isinstance(s.default, (float, list, tuple)) and not isinstance(s.default, bool)
        d.dynamic_typing = loose
        d.read_only = s.read_only and not loose  # a loose parameter's type is settled first, then locked
        if isinstance(default, (list, tuple)) and not default:
            default = [""]  # an empty list has no ROS type of its own: declared with a placeholder, reset below
        try:
            p = node.declare_parameter(s.name, default, d)
            if loose:
                p = _settle_type(node, s, p, Parameter, empty_default=isinstance(default, list) and default == [""])
                if s.read_only:  # (a new descriptor: the node keeps a reference to the one declared)
                    locked = copy.deepcopy(d)
                    locked.read_only = True
                    node.set_descriptor(s.name, locked)
        except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
            raise ValueError(
                f"{node.get_name()}: invalid start-up value for parameter {s.name!r} ({s.describe()}): {exc}"
            ) from None
        value = p.value if p.value is not None else []
        if isinstance(value, (list, tuple)):
            value = list(value)
        problem = validate(s, value)
        if problem:
            raise ValueError(f"{node.get_name()}: {problem}")
        values[s.name] = value
    return values


def _settle_type(node, spec: ParamSpec, p, parameter_cls, empty_default: bool):
    """A dynamically typed float / list parameter set to the type it means: an integer → that float, a
    single string → a one-element list, the empty-list placeholder → an empty string array."""
    v, kind = p.value, parameter_cls.Type
    if isinstance(spec.default, float) and isinstance(v, int) and not isinstance(v, bool):
        new = parameter_cls(spec.name, kind.DOUBLE, float(v))
    elif isinstance(spec.default, (list, tuple)) and isinstance(v, str):
        new = parameter_cls(spec.name, kind.STRING_ARRAY, [v])  # one path, no brackets
    elif empty_default and list(v or []) == [""]:
        new = parameter_cls(spec.name, kind.STRING_ARRAY, [])
    else:
        return p
    result = node.set_parameters([new])[0]
    if not result.successful:
        raise ValueError(f"parameter {spec.name!r}: cannot set {new.value!r}: {result.reason}")
    return node.get_parameter(spec.name)


def read_params_yaml(path, node_name: str) -> dict:
    """``ros__parameters`` of ``node_name`` in a ROS 2 params YAML file (also honouring ``/**``).

    The same file the nodes receive through ``--params-file``; the bring-up reads it to decide what
    to start. Raises ValueError naming the file for anything that is not a ROS params file.
    """
    from sim2sg_core.config import load_yaml_mapping

    data = load_yaml_mapping(
        path, what="parameters file", mapping_hint="the top level must map node names to ros__parameters"
    )
    out: dict = {}
    for key in ("/**", node_name, "/" + node_name):
        section = data.get(key)
        if section is None:
            continue
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict):
            raise ValueError(f"parameters file {path}: section {key!r} must hold a 'ros__parameters' mapping")
        out.update(section["ros__parameters"])
    return out
