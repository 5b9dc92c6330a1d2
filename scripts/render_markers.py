#!/usr/bin/env python3
"""Draw what ``~/markers`` carries for one simulator frame, with matplotlib (for machines without RViz).

Left: the camera image with the scene graph drawn on it (what ``~/debug_image`` shows). Right: the
``visualization_msgs/MarkerArray`` that ``sim2sg_ros.markers.scene_graph_markers`` builds for the same graph,
seen from above in the camera's frame (x right, z forward): every box / cylinder footprint, its ``class score``
label and every relationship arrow with its predicate, drawn from the markers themselves. The graph is the
simulator's label of the frame (every object has a ground position), as the node publishes it once CameraInfo
is known.

    python scripts/render_markers.py [--seed 0] [--index 3] [--out docs/results/ros_markers/markers.png]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="drive")
    ap.add_argument("--domain", default="target")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "docs" / "results" / "ros_markers" / "markers.png"))
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle
    from std_msgs.msg import Header
    from visualization_msgs.msg import Marker

    from sim2sg_core.sim import Simulator
    from sim2sg_core.viz import draw_scene_graph
    from sim2sg_ros.conversions import scene_graph_to_msg
    from sim2sg_ros.markers import scene_graph_markers

    sim = Simulator(env=args.env, domain=args.domain, seed=args.seed)
    sample = sim.sample(args.index)
    msg = scene_graph_to_msg(sample.graph, Header(frame_id="camera_optical_frame"), vocab=sim.vocab)
    arr = scene_graph_markers(msg, pitch=0.0)

    fig = plt.figure(figsize=(13, 4.4))
    ax_img = fig.add_axes((0.01, 0.22, 0.55, 0.68))
    ax_img.imshow(draw_scene_graph(sample.image, sample.graph))
    ax_img.set_axis_off()
    ax_img.set_title(f"camera image + ~/debug_image drawing ({args.env}/{args.domain}, frame {args.index})")
    ax = fig.add_axes((0.62, 0.11, 0.36, 0.80))
    zs = []
    for m in arr.markers:
        if m.action != Marker.ADD:
            continue
        c = (m.color.r, m.color.g, m.color.b)
        p = m.pose.position
        if m.ns == "objects":
            zs.append(p.z)
            if m.type == Marker.CYLINDER:
                ax.add_patch(Circle((p.x, p.z), m.scale.x / 2.0, color=c, alpha=0.6))
            else:
                ax.add_patch(
                    Rectangle((p.x - m.scale.x / 2, p.z - m.scale.z / 2), m.scale.x, m.scale.z, color=c, alpha=0.6)
                )
        elif m.ns == "labels":
            ax.text(p.x, p.z + 1.2, m.text, color=c, fontsize=7, ha="center", va="bottom", weight="bold")
        elif m.ns == "relationships":
            a, b = m.points
            ax.annotate("", xy=(b.x, b.z), xytext=(a.x, a.z), arrowprops=dict(arrowstyle="-|>", color="0.25", lw=1.0))
        elif m.ns == "predicates":
            ax.text(p.x, p.z, m.text, fontsize=7, color="0.1", ha="center", va="center", style="italic")
    ax.plot([0], [0], marker="^", color="k", markersize=9)
    ax.text(0, -1.5, "camera", ha="center", va="top", fontsize=8)
    far = max(zs + [10.0]) + 4.0
    half = max(12.0, far * math.tan(math.radians(sim.camera.hfov_deg / 2.0)))
    ax.set_xlim(-half, half)
    ax.set_ylim(-3, far)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, right)")
    ax.set_ylabel("z (m, forward)")
    n_obj = sum(1 for m in arr.markers if m.ns == "objects")
    n_rel = sum(1 for m in arr.markers if m.ns == "relationships")
    ax.set_title(f"~/markers from above: {n_obj} objects, {n_rel} relationship arrows", fontsize=10)
    ax.grid(alpha=0.3)
    fig.text(
        0.01,
        0.04,
        "Rendered with matplotlib from the MarkerArray perception_node publishes (RViz is not installed here);\n"
        "the graph is the simulator's label of the frame. Boxes / cylinders have the class's typical size.",
        fontsize=8,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out} ({n_obj} objects, {n_rel} arrows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
