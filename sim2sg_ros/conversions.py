"""The only place that knows both worlds: core SceneGraph dataclass <-> sim2sg_ros/msg/SceneGraph,
and ROS images <-> RGB numpy arrays.
"""

from __future__ import annotations

from typing import Optional

from sim2sg_core.data.image_codec import ImageDecodeError
from sim2sg_core.scene_graph import PREDICATES, Relationship, SceneGraph, SceneGraphError, SceneObject, Vocabulary

__all__ = [
    "scene_graph_to_msg",
    "msg_to_scene_graph",
    "SceneGraphError",
    "image_msg_to_rgb",
    "rgb_to_image_msg",
    "rgb_to_compressed_msg",
    "cv_bridge_available",
    "ImageDecodeError",
    "IMAGE_BACKENDS",
]


def scene_graph_to_msg(
    graph: SceneGraph,
    header=None,
    *,
    vocab: Optional[Vocabulary] = None,
    model_version: str = "",
    processing_time: float = 0.0,
):
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
        vocab = Vocabulary(
            classes=tuple(msg.class_names),
            predicates=tuple(msg.predicate_names) or PREDICATES,
            subject_classes=tuple(msg.subject_class_names),
        )
    objects = []
    for i, m in enumerate(msg.objects):
        if m.index != i:
            raise SceneGraphError(
                f"SceneGraph message object {i} carries index {m.index}; indices must equal array positions"
            )
        pos = (m.position.x, m.position.y, m.position.z) if m.position_valid else None
        objects.append(
            SceneObject(
                class_name=m.class_name,
                class_id=int(m.class_id),
                box=(m.x_min, m.y_min, m.x_max, m.y_max),
                score=float(m.score),
                position=pos,
            )
        )
    rels = [
        Relationship(
            subject=int(r.subject_index),
            object=int(r.object_index),
            predicate=r.predicate,
            predicate_id=int(r.predicate_id),
            score=float(r.score),
        )
        for r in msg.relationships
    ]
    graph = SceneGraph(
        objects=objects,
        relationships=rels,
        image_width=int(msg.image_width),
        image_height=int(msg.image_height),
        model_id=msg.model_id,
        vocab=vocab,
    )
    return graph.validate()


# --------------------------------------------------------------------------------------------------
# Images: sensor_msgs/Image | CompressedImage <-> RGB uint8 numpy (H, W, 3).
#
# Two interchangeable back ends: cv_bridge where it is importable (a stock ROS install), and the
# NumPy/OpenCV path of sim2sg_core.data.image_codec (the same code that reads images from bags)
# everywhere else. Both raise ImageDecodeError for a frame that cannot be turned into RGB, so the
# node treats every bad frame the same way whichever back end decoded it.

#: Back-end names accepted by the conversion functions.
IMAGE_BACKENDS = ("auto", "numpy", "cv_bridge")

_CV_BRIDGE = None  # cached CvBridge instance, False when cv_bridge cannot be imported


def _codec():
    from sim2sg_core.data import image_codec

    return image_codec


def _bridge():
    global _CV_BRIDGE
    if _CV_BRIDGE is None:
        try:
            from cv_bridge import CvBridge

            _CV_BRIDGE = CvBridge()
        except Exception:  # noqa: BLE001 - ImportError, or a cv_bridge built against another ABI: use NumPy
            _CV_BRIDGE = False
    return _CV_BRIDGE or None


def cv_bridge_available() -> bool:
    """True when cv_bridge is importable in this environment."""
    return _bridge() is not None


def _use_bridge(backend: str) -> bool:
    if backend not in IMAGE_BACKENDS:
        raise ValueError(f"image backend must be one of {list(IMAGE_BACKENDS)}, got {backend!r}")
    if backend == "cv_bridge":
        if _bridge() is None:
            raise RuntimeError("image backend 'cv_bridge' requested but cv_bridge is not importable")
        return True
    return backend == "auto" and _bridge() is not None


def _is_compressed(msg) -> bool:
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def image_msg_to_rgb(msg, backend: str = "auto"):
    """RGB uint8 (H, W, 3) from a sensor_msgs/Image or sensor_msgs/CompressedImage.

    Raw encodings: rgb8, bgr8, rgba8, bgra8, mono8 and the 16-bit ones (mono16, rgb16, bgr16,
    rgba16, bgra16; scaled to 8 bits). Raises ImageDecodeError (a ValueError) naming the problem:
    unsupported encoding, step/size mismatch, empty data, undecodable JPEG/PNG.
    """
    codec = _codec()
    compressed = _is_compressed(msg)
    # 16-bit frames always take the NumPy path: cv_bridge's depth scaling differs between versions,
    # and the node must give the same pixels whichever back end is installed.
    if _use_bridge(backend) and (compressed or "16" not in (msg.encoding or "")):
        return _bridge_to_rgb(msg, compressed, codec)
    if compressed:
        return codec.decode_compressed(msg.format, msg.data)
    # msg.data is an array.array('B'): the codec views it without a copy
    return codec.decode_raw(
        msg.encoding, int(msg.height), int(msg.width), int(msg.step), msg.data, bool(msg.is_bigendian)
    )


def _bridge_to_rgb(msg, compressed: bool, codec):
    """cv_bridge path: same checks and errors as the NumPy path (cv_bridge's own are less precise)."""
    import numpy as np

    bridge = _bridge()
    try:
        if compressed:
            if len(msg.data) == 0:
                raise codec.ImageDecodeError(f"compressed image ({msg.format!r}) has no data")
            out = bridge.compressed_imgmsg_to_cv2(msg, desired_encoding="rgb8")
        else:
            if msg.height == 0 or msg.width == 0 or len(msg.data) == 0:
                raise codec.ImageDecodeError(f"image {msg.width}x{msg.height} ({msg.encoding!r}) has no data")
            if msg.step * msg.height != len(msg.data):
                raise codec.ImageDecodeError(
                    f"image {msg.width}x{msg.height} ({msg.encoding!r}): step {msg.step} x height "
                    f"{msg.height} != data size {len(msg.data)}"
                )
            out = bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8")
    except codec.ImageDecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - any cv_bridge failure (CvBridgeError, cv2.error) -> ImageDecodeError
        kind = f"compressed image ({msg.format!r})" if compressed else f"image encoding {msg.encoding!r}"
        raise codec.ImageDecodeError(f"cannot convert {kind} to rgb8: {exc}") from None
    if out is None or out.ndim != 3 or out.shape[2] != 3:
        raise codec.ImageDecodeError("cv_bridge returned no RGB image")
    return np.ascontiguousarray(out, dtype=np.uint8)


def rgb_to_image_msg(rgb, encoding: str = "rgb8", header=None, backend: str = "auto"):
    """sensor_msgs/Image with ``encoding`` from an RGB uint8 (H, W, 3) array."""
    from sensor_msgs.msg import Image

    if _use_bridge(backend):
        import cv2

        conv = {
            "rgb8": None,
            "bgr8": cv2.COLOR_RGB2BGR,
            "rgba8": cv2.COLOR_RGB2RGBA,
            "bgra8": cv2.COLOR_RGB2BGRA,
            "mono8": cv2.COLOR_RGB2GRAY,
        }
        if encoding in conv:
            img = rgb if conv[encoding] is None else cv2.cvtColor(rgb, conv[encoding])
            msg = _bridge().cv2_to_imgmsg(img, encoding=encoding)
            if header is not None:
                msg.header = header
            return msg
    data, step = _codec().encode_raw(rgb, encoding)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(step)
    msg.data = data
    return msg


def rgb_to_compressed_msg(rgb, fmt: str = "jpeg", header=None):
    """sensor_msgs/CompressedImage (``jpeg`` or ``png``) from an RGB uint8 array."""
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage()
    if header is not None:
        msg.header = header
    codec = _codec()
    msg.format = codec.compressed_format_string(fmt)  # image_transport's "rgb8; jpeg compressed bgr8"
    msg.data = codec.encode_compressed(rgb, fmt)
    return msg
