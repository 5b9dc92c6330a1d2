"""KITTI object format (``image_2/``, ``label_2/``, ``calib/``) ↔ scene graphs.

Label line (15 fields, a 16th score is accepted):
``type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y``.
Locations are object bottom centres in the camera frame that ``P2`` projects; our simulator writes
its level frame and folds the camera pitch into ``P2 = K [R_pitch | 0]``, so ``P2 @ location``
lands on the object in the image as KITTI tools expect. ``occluded`` is KITTI's integer level:
written from the occluded fraction (<0.1 → 0, <0.5 → 1, <1 → 2, 1 → 3) and read back as 0.0 / 0.3 / 0.7
/ 1.0 (3 = unknown: outside every evaluation difficulty, as in the devkit). Boxes are written as float pixel edges.

Reading maps types through a class map (``config/class_maps/kitti.yaml``): ``map`` type → class,
``ignore`` types (DontCare, Misc, Truck, …; ``DontCare`` always, as the format defines it) become
the graph's ``ignore_regions`` (evaluation neither rewards nor penalises detections inside them; no
other consumer sees them); any other type is an error naming file and line. Writing puts a graph's
ignore regions out as ``DontCare`` lines.
Relationships come from the shared rule on the label locations, so any KITTI-format folder is a
scene-graph dataset.
"""

from __future__ import annotations

import dataclasses

import math
import os
import struct
from pathlib import Path
from typing import Iterable, Optional, Union

import cv2
import numpy as np
import yaml

from sim2sg_core.geometry import Camera
from sim2sg_core.paths import config_path
from sim2sg_core.scene_graph import IgnoreRegion, SceneGraph, SceneObject, Vocabulary, derive_relationships
from sim2sg_core.utils.io import atomic_save, atomic_write_text

PathLike = Union[str, os.PathLike]
#: KITTI level → occluded fraction; 3 ("unknown") → 1.0, which evaluation's difficulties all exclude
#: (``eval.ignore.occlusion_level``), as the devkit does.
OCCLUSION_FROM_LEVEL = {0: 0.0, 1: 0.3, 2: 0.7, 3: 1.0}


class KittiFormatError(ValueError):
    """A KITTI folder, label or calib file that does not follow the format."""


def default_class_map_path() -> Path:
    return config_path("class_maps", "kitti.yaml")


def load_class_map(class_map: Union[None, PathLike, dict]) -> dict:
    """``{'environment': str|None, 'map': {type: class}, 'ignore': set}`` from a YAML path or dict."""
    if class_map is None:
        class_map = default_class_map_path()
    elif isinstance(class_map, str) and class_map and not class_map.endswith((".yaml", ".yml")):
        class_map = config_path("class_maps", class_map + ".yaml")  # a built-in map by name
    where = "class map"
    if not isinstance(class_map, dict):
        where = str(class_map)
        try:
            with open(class_map, "r", encoding="utf-8") as f:
                class_map = yaml.safe_load(f)
        except FileNotFoundError:
            raise KittiFormatError(f"class map {where} does not exist") from None
        except yaml.YAMLError as e:
            raise KittiFormatError(f"class map {where} is not valid YAML: {e}") from None
    if not isinstance(class_map, dict) or not isinstance(class_map.get("map"), dict):
        raise KittiFormatError(f"{where}: expected a mapping with a 'map' of KITTI type → class")
    return {
        "environment": class_map.get("environment"),
        "map": {str(k): str(v) for k, v in class_map["map"].items()},
        "ignore": {str(t) for t in (class_map.get("ignore") or [])},
    }


# ----------------------------------------------------------------------------------------------
# Writing


def _occlusion_level(frac: float) -> int:
    return 0 if frac < 0.1 else (1 if frac < 0.5 else (2 if frac < 1.0 else 3))


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def label_line(obj: SceneObject, type_name: str) -> str:
    if obj.position is None or obj.size is None:
        raise KittiFormatError(f"object {obj.class_name!r} has no 3-D position/size; KITTI labels need both")
    x, y, z = obj.position
    h, w, length = obj.size
    alpha = _wrap(obj.yaw - math.atan2(x, z))
    x1, y1, x2, y2 = obj.box
    return (
        f"{type_name} {obj.truncation:.2f} {_occlusion_level(obj.occlusion)} {alpha:.2f} "
        f"{x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} {h:.2f} {w:.2f} {length:.2f} {x:.2f} {y:.2f} {z:.2f} "
        f"{_wrap(obj.yaw):.2f}"
    )


def dont_care_line(region: IgnoreRegion) -> str:
    """An ignore region as KITTI writes unlabelled regions (every 3-D field at its 'unknown' value)."""
    x1, y1, x2, y2 = region.box
    return f"DontCare -1 -1 -10 {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} -1 -1 -1 -1000 -1000 -1000 -10"


def calib_text(camera) -> str:
    P = camera.P
    K0 = np.hstack([camera.K, np.zeros((3, 1))])
    fmt = lambda m: " ".join(f"{v:.12e}" for v in np.asarray(m).reshape(-1))  # noqa: E731
    return (
        f"P0: {fmt(K0)}\nP1: {fmt(K0)}\nP2: {fmt(P)}\nP3: {fmt(P)}\nR0_rect: {fmt(np.eye(3))}\n"
        f"Tr_velo_to_cam: {fmt(np.hstack([np.eye(3), np.zeros((3, 1))]))}\n"
        f"Tr_imu_to_velo: {fmt(np.hstack([np.eye(3), np.zeros((3, 1))]))}\n"
    )


def write_kitti(
    out_dir: PathLike,
    samples: Iterable,
    camera=None,
    *,
    class_map: Union[None, PathLike, dict] = None,
    start_index: int = 0,
    progress=None,
) -> int:
    """Write samples (simulator ``Sample`` or ``(image, graph[, camera])``) as a KITTI folder.

    The camera comes from ``sample.scene.camera`` when present, else ``camera``. Type names are
    the first KITTI type the class map maps to each class (else the capitalised class name).
    Every file is written atomically. Returns the number of samples written.
    """
    out = Path(out_dir)
    for sub in ("image_2", "label_2", "calib"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    reverse: dict[str, str] = {}
    try:
        for t, c in load_class_map(class_map)["map"].items():
            reverse.setdefault(c, t)
    except KittiFormatError:
        if class_map is not None:
            raise
    n = 0
    for i, s in enumerate(samples, start=start_index):
        if hasattr(s, "image"):
            image, graph, cam = s.image, s.graph, getattr(getattr(s, "scene", None), "camera", None) or camera
        else:
            image, graph = s[0], s[1]
            cam = s[2] if len(s) > 2 else camera
        if cam is None:
            raise KittiFormatError("write_kitti needs a camera (sample.scene.camera or camera=...) for calib/P2")
        stem = f"{i:06d}"
        ok, png = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
        if not ok:
            raise KittiFormatError(f"cannot encode image {stem} as PNG")

        def _w(tmp, data=png):
            with open(tmp, "wb") as f:
                f.write(data.tobytes())

        atomic_save(out / "image_2" / f"{stem}.png", _w)
        lines = [label_line(o, reverse.get(o.class_name, o.class_name.capitalize())) for o in graph.objects]
        lines += [dont_care_line(g) for g in getattr(graph, "ignore_regions", ())]
        atomic_write_text(out / "label_2" / f"{stem}.txt", "\n".join(lines) + ("\n" if lines else ""))
        atomic_write_text(out / "calib" / f"{stem}.txt", calib_text(cam))
        n += 1
        if progress is not None:
            progress.update(1)
    return n


# ----------------------------------------------------------------------------------------------
# Reading


def read_calib(path: PathLike) -> dict[str, np.ndarray]:
    """Calib file → {key: matrix}; P2 (3×4) is required."""
    path = Path(path)
    if not path.is_file():
        raise KittiFormatError(f"calib file {path} is missing")
    out = {}
    with open(path, "r", encoding="utf-8") as f:
        for ln, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            key, sep, rest = line.partition(":")
            if not sep:
                raise KittiFormatError(f"{path}:{ln}: expected 'KEY: numbers', got {line[:60]!r}")
            try:
                out[key.strip()] = np.array([float(v) for v in rest.split()])
            except ValueError:
                raise KittiFormatError(f"{path}:{ln}: non-numeric value in {key.strip()}") from None
    if "P2" not in out or out["P2"].size != 12:
        raise KittiFormatError(f"{path}: needs a 'P2:' line with 12 numbers")
    out["P2"] = out["P2"].reshape(3, 4)
    return out


def camera_from_calib(calib: dict, width: int, height: int, height_m: float = 1.65):
    """A :class:`sim2sg_core.geometry.Camera` from P2 (intrinsics and pitch by RQ decomposition)."""
    K, R, *_ = cv2.decomposeProjectionMatrix(np.asarray(calib["P2"], np.float64))
    K = K / K[2, 2]
    # R = rotation about x by pitch: R[1,2] = -sin(pitch), R[2,2] = cos(pitch)
    pitch = math.atan2(-R[1, 2], R[2, 2])
    return Camera(
        fx=float(K[0, 0]),
        fy=float(K[1, 1]),
        cx=float(K[0, 2]),
        cy=float(K[1, 2]),
        width=int(width),
        height=int(height),
        height_m=float(height_m),
        pitch=float(pitch),
    )


def image_size(path: PathLike) -> tuple[int, int]:
    """(width, height) of an image; PNG from its header, others through OpenCV."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        w, h = struct.unpack(">II", head[16:24])
        return int(w), int(h)
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise KittiFormatError(f"{path}: not a readable image")
    return int(img.shape[1]), int(img.shape[0])


def parse_labels(
    path: PathLike, cmap: dict, vocab: Vocabulary, size: Optional[tuple[int, int]] = None, box_tolerance: float = 1.0
) -> tuple[list[SceneObject], list[IgnoreRegion]]:
    """One label file → (objects, ignore regions of the ignored types); errors name the file and line."""
    path = Path(path)
    objs, ignore = [], []
    with open(path, "r", encoding="utf-8") as f:
        for ln, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) not in (15, 16):
                raise KittiFormatError(f"{path}:{ln}: expected 15 (or 16 with score) fields, got {len(parts)}")
            t = parts[0]
            ignored = t in cmap["ignore"] or (t == "DontCare" and t not in cmap["map"])
            cls = None if ignored else cmap["map"].get(t)
            if not ignored and cls is None:
                raise KittiFormatError(
                    f"{path}:{ln}: unknown object type {t!r}; the class map maps "
                    f"{sorted(cmap['map'])} and ignores {sorted(cmap['ignore'])}"
                )
            if cls is not None and cls not in vocab.classes:
                raise KittiFormatError(
                    f"{path}:{ln}: type {t!r} maps to {cls!r}, which is not a class of the "
                    f"vocabulary {list(vocab.classes)}"
                )
            try:
                vals = [float(v) for v in parts[1:]]
            except ValueError:
                raise KittiFormatError(f"{path}:{ln}: non-numeric field in {line.strip()[:80]!r}") from None
            if not all(math.isfinite(v) for v in vals):
                raise KittiFormatError(f"{path}:{ln}: non-finite number in {line.strip()[:80]!r}")
            trunc, occ, _alpha, x1, y1, x2, y2, h, w, length, x, y, z, ry = vals[:14]
            score = vals[14] if len(vals) > 14 else 1.0
            if x2 < x1 or y2 < y1:
                raise KittiFormatError(f"{path}:{ln}: box ({x1}, {y1}, {x2}, {y2}) has x2 < x1 or y2 < y1")
            if size is not None:
                W, H = size
                if x1 < -box_tolerance or y1 < -box_tolerance or x2 > W + box_tolerance or y2 > H + box_tolerance:
                    raise KittiFormatError(
                        f"{path}:{ln}: box ({x1}, {y1}, {x2}, {y2}) lies outside the {W}x{H} "
                        f"image (wrong image for this label file?)"
                    )
            if cls is None:  # an ignored type
                ignore.append(IgnoreRegion(box=(x1, y1, x2, y2), kind=t))
                continue
            objs.append(
                SceneObject(
                    class_name=cls,
                    class_id=vocab.class_id(cls),
                    box=(x1, y1, x2, y2),
                    score=float(score),
                    position=(x, y, z),
                    size=(h, w, length),
                    truncation=float(min(max(trunc, 0.0), 1.0)),
                    occlusion=OCCLUSION_FROM_LEVEL.get(int(round(occ)), 0.0),
                    yaw=ry,
                )
            )
    return objs, ignore


def parse_label_file(
    path: PathLike, cmap: dict, vocab: Vocabulary, size: Optional[tuple[int, int]] = None, box_tolerance: float = 1.0
) -> list[SceneObject]:
    """One label file → objects (ignored types left out; :func:`parse_labels` returns them too)."""
    return parse_labels(path, cmap, vocab, size, box_tolerance)[0]


def has_no_3d(obj: SceneObject) -> bool:
    """True for a label whose 3-D fields are all zero (2-D-only datasets in KITTI layout)."""
    return (obj.position is None or not any(obj.position)) and (obj.size is None or not any(obj.size))


def ground_positions_from_boxes(objects: list[SceneObject], camera) -> list[SceneObject]:
    """Objects without 3-D labels get a level-frame ground position: the bottom centre of the box
    back-projected onto the ground through ``camera`` (calibration + mount height). Boxes whose
    bottom lies at or above the horizon get no position (they take part in no relationship)."""
    out = []
    for o in objects:
        if has_no_3d(o):
            x0, _, x1, y1 = o.box
            p = camera.backproject_to_ground(0.5 * (x0 + x1), y1)
            pos = (float(p[0]), float(p[1]), float(p[2])) if np.isfinite(p).all() else None
            o = dataclasses.replace(o, position=pos, size=None)
        out.append(o)
    return out


def read_kitti(
    root: PathLike,
    class_map: Union[None, PathLike, dict] = None,
    vocab: Optional[Vocabulary] = None,
    *,
    check_image_size: bool = True,
    expected_size: Optional[tuple[int, int]] = None,
    max_items: Optional[int] = None,
    require_calib: bool = True,
    camera_height_m: Optional[float] = None,
) -> list[tuple[Path, SceneGraph]]:
    """A KITTI folder → ``[(image path, SceneGraph)]`` sorted by frame id.

    Labels with no 3-D fields (all zero: 2-D datasets in KITTI layout) get ground positions from
    their boxes through the frame's calib when ``camera_height_m`` (the camera's mount height) is
    given, so relationships follow the same rule as everywhere else; otherwise they stay at zero.

    ``vocab`` defaults to the class map's environment vocabulary. With ``check_image_size``, the
    image's size is read (PNG header) and boxes must lie inside it; ``expected_size`` = (W, H)
    additionally requires that size. Every label needs its image and (unless
    ``require_calib=False``) its calib file with P2.
    """
    root = Path(root)
    cmap = load_class_map(class_map)
    if vocab is None:
        # deferred: the simulator's environment loader (whole sim package) only for this default;
        # the one data -> sim edge, ignored in the import-linter contract (pyproject.toml)
        from sim2sg_core.sim.domains import load_environment

        if not cmap["environment"]:
            raise KittiFormatError("read_kitti needs a vocab or a class map with an 'environment'")
        vocab = load_environment(cmap["environment"]).vocab
    labels_dir, images_dir, calib_dir = root / "label_2", root / "image_2", root / "calib"
    for d in (labels_dir, images_dir):
        if not d.is_dir():
            raise KittiFormatError(f"{root} is not a KITTI object folder: {d.name}/ is missing")
    label_files = sorted(labels_dir.glob("*.txt"))
    if max_items is not None:
        label_files = label_files[:max_items]
    items = []
    for lf in label_files:
        stem = lf.stem
        img = next(
            (
                images_dir / f"{stem}{ext}"
                for ext in (".png", ".jpg", ".jpeg")
                if (images_dir / f"{stem}{ext}").is_file()
            ),
            None,
        )
        if img is None:
            raise KittiFormatError(f"{lf}: no image {stem}.png in {images_dir}")
        calib = read_calib(calib_dir / f"{stem}.txt") if require_calib or camera_height_m is not None else None
        size = None
        if check_image_size or expected_size is not None or camera_height_m is not None:
            size = image_size(img)
            if expected_size is not None and tuple(size) != tuple(expected_size):
                raise KittiFormatError(
                    f"{img}: image is {size[0]}x{size[1]}, expected {expected_size[0]}x{expected_size[1]}"
                )
        objs, ignore = parse_labels(lf, cmap, vocab, size if check_image_size else None)
        if camera_height_m is not None and any(has_no_3d(o) for o in objs):
            assert calib is not None and size is not None  # both read above whenever camera_height_m is set
            objs = ground_positions_from_boxes(objs, camera_from_calib(calib, size[0], size[1], camera_height_m))
        g = SceneGraph(
            objects=objs,
            relationships=derive_relationships(objs, vocab),
            image_width=size[0] if size else 0,
            image_height=size[1] if size else 0,
            ignore_regions=ignore,
        )
        items.append((img, g.validate()))
    return items


__all__ = [
    "KittiFormatError",
    "calib_text",
    "camera_from_calib",
    "default_class_map_path",
    "dont_care_line",
    "ground_positions_from_boxes",
    "has_no_3d",
    "image_size",
    "label_line",
    "load_class_map",
    "parse_label_file",
    "parse_labels",
    "read_calib",
    "read_kitti",
    "write_kitti",
]
