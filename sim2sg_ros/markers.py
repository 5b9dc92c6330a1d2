"""The scene graph as ``visualization_msgs/MarkerArray`` for RViz and Foxglove (``~/markers``).

One array per graph, in the image's frame (the camera's optical frame: x right, y down, z forward; RViz
places it in its fixed frame through tf), stamped with the image's stamp:

* first a ``DELETEALL``: the previous graph's markers go, whatever their number;
* per object with a ground position (``position_valid``), namespace ``objects``: a box (``CUBE``) or, for
  round classes, a ``CYLINDER`` of the class's typical size (the simulator environments' class priors),
  standing on the ground at the position, coloured per class (the debug image's colours); namespace
  ``labels``: a view-facing ``TEXT_VIEW_FACING`` ``class score`` above it;
* per relationship whose two objects both have a position, namespace ``relationships``: an ``ARROW`` from
  the subject to the object a little above the ground; namespace ``predicates``: the predicate as text at
  the arrow's middle.

Objects without a ground position (no CameraInfo yet, or a box ending above the horizon) get no 3-D marker,
nor do their relationships. Pure functions of the message: no node, no clock.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Optional

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

#: Classes drawn as a cylinder (round things); every other class is a box.
ROUND_CLASSES = frozenset({"pedestrian", "vegetation", "cylinder", "sphere", "cup", "bowl", "plate", "bottle"})
#: (height, width, length) in metres for a class no simulator environment knows.
DEFAULT_SIZE = (1.0, 1.0, 1.0)
#: Arrows run this high above the ground (metres; cars are 1.5 m tall: the arrow passes through them).
ARROW_HEIGHT = 0.5
TEXT_HEIGHT = 0.6  # metres, letter height of labels
NS_OBJECTS, NS_LABELS, NS_RELATIONSHIPS, NS_PREDICATES = "objects", "labels", "relationships", "predicates"


@lru_cache(maxsize=1)
def class_sizes() -> dict:
    """``{class name: (height, width, length)}`` from every simulator environment in ``config/sim`` (the
    first environment naming a class wins). Empty when the configs cannot be read (the defaults are used)."""
    try:
        from sim2sg_core.paths import config_dir
        from sim2sg_core.sim.domains import load_environment
    except ImportError:
        return {}
    sizes: dict = {}
    try:
        for path in sorted((config_dir() / "sim").glob("*.yaml")):
            try:
                env = load_environment(path)
            except (ValueError, OSError):
                continue
            for name, prior in env.classes.items():
                sizes.setdefault(name, tuple(float(v) for v in prior.size))
    except (OSError, FileNotFoundError):
        return {}
    return sizes


def class_colour(class_id: int, alpha: float = 1.0) -> ColorRGBA:
    """The debug image's colour of a class (``sim2sg_core.viz.class_colour``) as a ColorRGBA."""
    from sim2sg_core.viz import class_colour as rgb

    r, g, b = rgb(int(class_id))
    return ColorRGBA(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=float(alpha))


def _level_to_optical(pitch: float):
    """The level ground frame → optical frame rotation (about x by ``pitch``, positive looking down) as a
    function on (x, y, z) and as a quaternion (x, y, z, w)."""
    c, s = math.cos(pitch), math.sin(pitch)

    def rotate(x: float, y: float, z: float) -> Point:
        return Point(x=float(x), y=float(c * y - s * z), z=float(s * y + c * z))

    return rotate, (math.sin(pitch / 2.0), 0.0, 0.0, math.cos(pitch / 2.0))


def scene_graph_markers(graph, *, pitch: float = 0.0, sizes: Optional[dict] = None) -> MarkerArray:
    """MarkerArray of a ``sim2sg_ros/msg/SceneGraph`` (see the module docstring).

    ``graph.objects[i].position`` is in the camera's *level* frame (the ground is ``y = camera height``);
    ``pitch`` (radians, positive looking down: the pitch the positions were computed with) turns it into the
    optical frame the image's ``frame_id`` names. ``sizes`` defaults to :func:`class_sizes`.
    """
    sizes = class_sizes() if sizes is None else sizes
    header = graph.header
    rotate, quat = _level_to_optical(pitch)
    out = MarkerArray()
    clear = Marker(action=Marker.DELETEALL)
    clear.header = header
    out.markers.append(clear)
    forever = Duration()  # 0 = no lifetime: the next DELETEALL removes them

    def marker(ns: str, ident: int, kind: int, colour: ColorRGBA) -> Marker:
        m = Marker(ns=ns, id=ident, type=kind, action=Marker.ADD, color=colour, lifetime=forever)
        m.header = header
        m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z, m.pose.orientation.w = quat
        return m

    ground: dict = {}  # object index -> (x, ground y, z) in the level frame
    for k, o in enumerate(graph.objects):
        if not o.position_valid:
            continue
        p = o.position
        if not all(math.isfinite(v) for v in (p.x, p.y, p.z)):
            continue
        h, w, length = sizes.get(o.class_name, DEFAULT_SIZE)
        ground[k] = (p.x, p.y, p.z, _scale(h, w, length))
        shape = Marker.CYLINDER if o.class_name in ROUND_CLASSES else Marker.CUBE
        body = marker(NS_OBJECTS, k, shape, class_colour(o.class_id, 0.6))
        body.pose.position = rotate(p.x, p.y - h / 2.0, p.z)  # standing on the ground (level y down)
        # level frame: width across (x), height up (y), length along the view (z)
        if shape == Marker.CYLINDER:
            d = max(w, length)
            # a cylinder's axis is its z: turn it upright (level y) with a quarter turn about x
            body.pose.orientation.x, body.pose.orientation.y, body.pose.orientation.z, body.pose.orientation.w = (
                _compose_x(pitch, -math.pi / 2.0)
            )
            body.scale.x, body.scale.y, body.scale.z = d, d, h
        else:
            body.scale.x, body.scale.y, body.scale.z = w, h, length
        scale = _scale(h, w, length)
        text = marker(NS_LABELS, k, Marker.TEXT_VIEW_FACING, class_colour(o.class_id, 1.0))
        text.pose.position = rotate(p.x, p.y - h - TEXT_HEIGHT * scale, p.z)
        text.scale.z = TEXT_HEIGHT * scale
        text.text = f"{o.class_name} {o.score:.2f}"
        out.markers.append(body)
        out.markers.append(text)

    white = ColorRGBA(r=1.0, g=1.0, b=1.0, a=0.9)
    for k, r in enumerate(graph.relationships):
        a, b = ground.get(int(r.subject_index)), ground.get(int(r.object_index))
        if a is None or b is None:
            continue
        scale = min(a[3], b[3])  # cups on a table get thin arrows close to the table
        lift = ARROW_HEIGHT * scale
        start = rotate(a[0], a[1] - lift, a[2])
        end = rotate(b[0], b[1] - lift, b[2])
        arrow = marker(NS_RELATIONSHIPS, k, Marker.ARROW, white)
        arrow.pose.orientation.x = arrow.pose.orientation.y = arrow.pose.orientation.z = 0.0
        arrow.pose.orientation.w = 1.0  # points are in the header frame itself
        arrow.points = [start, end]
        # shaft diameter, head diameter, head length
        arrow.scale.x, arrow.scale.y, arrow.scale.z = 0.08 * scale, 0.25 * scale, 0.35 * scale
        label = marker(NS_PREDICATES, k, Marker.TEXT_VIEW_FACING, white)
        mid = rotate((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0 - lift - 0.5 * TEXT_HEIGHT * scale, (a[2] + b[2]) / 2.0)
        label.pose.position = mid
        label.scale.z = TEXT_HEIGHT * 0.8 * scale
        label.text = r.predicate
        out.markers.append(arrow)
        out.markers.append(label)
    return out


def _scale(h: float, w: float, length: float) -> float:
    """Text and arrow scale of a class: 1 for people and cars, smaller for table-top things."""
    return min(1.0, max(0.1, max(h, w, length) / 1.5))


def _compose_x(pitch: float, extra: float) -> tuple:
    """Quaternion of a rotation about x by ``pitch + extra`` (two rotations about one axis add up)."""
    angle = pitch + extra
    return (math.sin(angle / 2.0), 0.0, 0.0, math.cos(angle / 2.0))


__all__ = ["class_sizes", "scene_graph_markers", "ROUND_CLASSES", "NS_OBJECTS", "NS_RELATIONSHIPS"]
