#!/usr/bin/env python3
"""The README's node parameter tables, written from the nodes' own parameter specs (``sim2sg_ros.params``).

    python scripts/readme_params.py            # rewrite the blocks between the README's markers
    python scripts/readme_params.py --check    # exit 1 when a block is not what the specs give

One block per node (perception_node, adaptation_node, sim_camera_node): name, default, what it does (with its
range, choices and whether it is read-only at run time). The nodes declare their parameters from the same
specs, so the README cannot describe a parameter the node does not have.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim2sg_ros.params import TABLES

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def markers(node: str) -> tuple[str, str]:
    return f"<!-- params:{node}:begin (scripts/readme_params.py) -->", f"<!-- params:{node}:end -->"


def _default(value) -> str:
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (list, tuple)):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    return f"`{value}`"


def block(node: str) -> str:
    begin, end = markers(node)
    lines = [begin, "| parameter | default | meaning |", "|---|---|---|"]
    for spec in TABLES[node]:
        lines.append(f"| `{spec.name}` | {_default(spec.default)} | {spec.describe().replace('|', '/')} |")
    return "\n".join([*lines, end])


def render(text: str) -> str:
    """``text`` (the README) with every node's block replaced; a node whose markers are missing is an error."""
    for node in TABLES:
        begin, end = markers(node)
        i, j = text.find(begin), text.find(end)
        if i < 0 or j < i:
            raise SystemExit(f"README.md has no {begin} ... {end} block")
        text = text[:i] + block(node) + text[j + len(end) :]
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when the README's blocks are stale")
    args = ap.parse_args(argv)
    old = README.read_text(encoding="utf-8")
    new = render(old)
    if args.check:
        if new != old:
            print("README.md's parameter tables are stale: run `python scripts/readme_params.py`", file=sys.stderr)
            return 1
        return 0
    if new != old:
        README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
