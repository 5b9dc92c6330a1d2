"""Bring-up without ``ros2 launch``: the same nodes, arguments and YAML as ``launch/*.launch.py``.

    python -m sim2sg_ros.bringup perception --params config/perception.yaml \\
        [--image-topic /camera/image_raw] [--checkpoint FILE] [--device auto|cpu|cuda] \\
        [--backend auto|torch|onnxruntime] [--use-sim-camera] [--sim-domain target] \\
        [--cameras front,left,rear] [--rviz]
    python -m sim2sg_ros.bringup adaptation --params config/adaptation.yaml \\
        --bag BAG [--bag BAG2] [--topic T] [--init-checkpoint FILE] [--output FILE]

Each node runs in its own process (``python -m sim2sg_ros.<node> --ros-args --params-file ...``),
exactly what launch_ros would start. SIGINT / SIGTERM are forwarded to every node; the bring-up
exits when a node exits (with that node's status), after stopping the others.

``--cameras front,left,rear`` (``cameras:=[front,left,rear]`` in the launch file) starts one perception node
(and, with ``--use-sim-camera``, one simulated camera) per camera, each under its namespace
(``/front/scene_graph`` from ``/front/camera/image_raw``, ...), all with the one params file: its
``perception_node`` / ``sim_camera_node`` sections are handed to every namespaced node (a key
``perception_node`` alone matches only the node in the root namespace). ``--rviz`` also starts
``rviz2 -d config/sim2sg.rviz`` where rviz2 is installed, and says so where it is not.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import yaml

from sim2sg_ros.params import ADAPTATION_NODE, PERCEPTION_NODE, SIM_CAMERA_NODE, read_params_yaml
from sim2sg_ros.topics import IMAGE_TOPIC


@dataclass
class NodeCommand:
    """One node process: module, node name, params file, ``-p`` overrides and ``-r`` remappings."""

    module: str
    name: str
    params_file: Optional[str] = None
    overrides: dict = field(default_factory=dict)
    remappings: list = field(default_factory=list)
    namespace: str = ""
    #: a program that is not one of our nodes (rviz2): its whole command line
    program: Optional[list] = None

    @property
    def label(self) -> str:
        return f"/{self.namespace}/{self.name}" if self.namespace else self.name

    def argv(self, python: str = sys.executable) -> list[str]:
        if self.program is not None:
            return list(self.program)
        cmd = [python, "-m", f"sim2sg_ros.{self.module}", "--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            cmd += ["-r", f"__ns:=/{self.namespace}"]
        if self.params_file:
            cmd += ["--params-file", self.params_file]
        for k, v in self.overrides.items():
            cmd += ["-p", f"{k}:={_param_literal(v)}"]
        for src, dst in self.remappings:
            cmd += ["-r", f"{src}:={dst}"]
        return cmd


def _param_literal(v) -> str:
    """A ``-p name:=value`` literal rcl parses back to the same type (YAML syntax)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_param_literal(x) if not isinstance(x, str) else f"'{x}'" for x in v) + "]"
    return str(v)


def _image_remaps(image_topic: str) -> list:
    """Remap the image topic and, following image_transport, its camera_info and compressed topics."""
    if not image_topic or image_topic == IMAGE_TOPIC:
        return []
    return [(IMAGE_TOPIC, image_topic)]


_NAME_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")


def parse_cameras(value: Union[str, Sequence[str], None]) -> list[str]:
    """Camera namespaces from ``front,left,rear``, ``[front, left, rear]``, ``['front', 'rear']`` or a list;
    leading / trailing slashes dropped. Raises ValueError (one sentence) for a name ROS would refuse or a
    repeated one."""
    if value is None:
        return []
    items = value.strip().strip("[]").split(",") if isinstance(value, str) else list(value)
    names = [str(n).strip().strip("'\"").strip().strip("/") for n in items]
    names = [n for n in names if n]
    for n in names:
        if not _NAME_TOKEN.match(n):
            raise ValueError(
                f"camera namespace {n!r} is not a valid ROS name (letters, digits, _ and /; not starting with a digit)"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"camera namespaces repeat: {names}")
    return names


def namespaced_params_file(params_file: str, nodes: Sequence[str], where: Optional[str] = None) -> str:
    """A copy of ``params_file`` whose sections for ``nodes`` are keyed ``/**/<node>``, so nodes of that name in
    any namespace read them (rcl matches a plain ``perception_node`` key to ``/perception_node`` only). Written to
    ``where`` (a folder; default: a new temporary folder); returns its path."""
    import tempfile

    data = {f"/**/{n}": {"ros__parameters": read_params_yaml(params_file, n)} for n in nodes}
    folder = Path(where) if where else Path(tempfile.mkdtemp(prefix="sim2sg_bringup_"))
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / ("namespaced." + Path(params_file).name)
    out.write_text(
        f"# generated by sim2sg_ros.bringup from {params_file}: its sections, for nodes in every namespace\n"
        + yaml.safe_dump(data, sort_keys=False)
    )
    return str(out)


RVIZ_MISSING = (
    "rviz2 is not installed (on a stock ROS 2 Jazzy: sudo apt install ros-jazzy-rviz2); starting without RViz"
)


def rviz_command(config: Optional[str] = None) -> Optional[NodeCommand]:
    """``rviz2 -d config/sim2sg.rviz`` where rviz2 is on PATH; None (after printing why) where it is not."""
    exe = shutil.which("rviz2")
    if exe is None:
        print(f"[bringup] {RVIZ_MISSING}", flush=True)
        return None
    return NodeCommand("rviz2", "rviz2", program=[exe, "-d", config or _default_params("sim2sg.rviz")])


def perception_commands(
    params_file: str,
    *,
    image_topic: str = IMAGE_TOPIC,
    checkpoint: str = "",
    device: str = "",
    backend: str = "",
    use_sim_camera: bool = False,
    sim_domain: str = "",
    cameras: Union[str, Sequence[str], None] = None,
    rviz: bool = False,
    workdir: Optional[str] = None,
) -> list[NodeCommand]:
    """The processes ``perception.launch.py`` starts, for the same arguments. With ``cameras``, one perception
    node (and sim camera) per namespace, all reading the params file's sections (:func:`namespaced_params_file`,
    written into ``workdir``)."""
    params_file = str(Path(params_file).resolve())
    read_params_yaml(params_file, PERCEPTION_NODE)  # fail early, naming the file, if it is not a params file
    namespaces = parse_cameras(cameras)
    overrides = {}
    if checkpoint:
        overrides["checkpoint"] = os.path.abspath(checkpoint)
    if device:
        overrides["device"] = device
    if backend:
        overrides["backend"] = backend
    remaps = _image_remaps(image_topic)
    sim_over = {"domain": sim_domain} if sim_domain else {}
    if not namespaces:
        cmds = [NodeCommand("perception_node", PERCEPTION_NODE, params_file, overrides, remaps)]
        if use_sim_camera:
            cmds.insert(0, NodeCommand("sim_camera_node", SIM_CAMERA_NODE, params_file, sim_over, remaps))
    else:
        shared = namespaced_params_file(params_file, (PERCEPTION_NODE, SIM_CAMERA_NODE), workdir)
        seed = int(read_params_yaml(params_file, SIM_CAMERA_NODE).get("seed", 0))
        cmds = []
        for k, ns in enumerate(namespaces):
            if use_sim_camera:  # each simulated camera its own images: the YAML's seed + k
                cam_over = dict(sim_over, seed=seed + k)
                cmds.append(NodeCommand("sim_camera_node", SIM_CAMERA_NODE, shared, cam_over, remaps, namespace=ns))
            cmds.append(NodeCommand("perception_node", PERCEPTION_NODE, shared, dict(overrides), remaps, namespace=ns))
    if rviz:
        viewer = rviz_command()
        if viewer is not None:
            cmds.append(viewer)
    return cmds


def adaptation_commands(
    params_file: str, *, bags: list, topic: str = "", init_checkpoint: str = "", output: str = ""
) -> list[NodeCommand]:
    """The process ``adaptation.launch.py`` starts, for the same arguments."""
    params_file = str(Path(params_file).resolve())
    read_params_yaml(params_file, ADAPTATION_NODE)
    overrides: dict = {}
    if bags:
        overrides["bags"] = [os.path.abspath(b) for b in bags]
    if topic:
        overrides["topic"] = topic
    if init_checkpoint:
        overrides["init_checkpoint"] = os.path.abspath(init_checkpoint)
    if output:
        overrides["output_checkpoint"] = os.path.abspath(output)
    return [NodeCommand("adaptation_node", ADAPTATION_NODE, params_file, overrides)]


def stop_processes(procs, timeout: float = 20.0) -> None:
    """SIGINT every live process, wait up to ``timeout`` seconds in all, then kill what is left."""
    for p in procs:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class ProcessGroup:
    """Start node processes, forward signals, stop them all when one ends."""

    def __init__(self, commands: list[NodeCommand], env: Optional[dict] = None):
        self.commands = commands
        self.env = env
        self.procs: list[subprocess.Popen] = []

    def start(self) -> None:
        for c in self.commands:
            argv = c.argv()
            print(f"[bringup] starting {c.label}: {' '.join(argv)}", flush=True)
            # own session: a terminal Ctrl-C reaches the bring-up only, which forwards it once (as launch does)
            self.procs.append(subprocess.Popen(argv, env=self.env, start_new_session=True))

    def signal_all(self, sig: int) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.send_signal(sig)
                except ProcessLookupError:
                    pass

    def stop(self, timeout: float = 20.0) -> None:
        stop_processes(self.procs, timeout)

    def wait_any(self) -> int:
        """Block until a node exits; return its status (the others are then stopped)."""
        while True:
            for c, p in zip(self.commands, self.procs):
                rc = p.poll()
                if rc is not None:
                    print(f"[bringup] {c.label} exited with status {rc}", flush=True)
                    return rc
            time.sleep(0.2)


def run(commands: list[NodeCommand]) -> int:
    group = ProcessGroup(commands)
    received = []

    def forward(signum, _frame):
        received.append(signum)
        group.signal_all(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        group.start()
        rc = group.wait_any()
    finally:
        group.stop()
        for s, h in old.items():
            signal.signal(s, h)
    return 0 if received and rc in (0, -signal.SIGINT, -signal.SIGTERM) else rc


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m sim2sg_ros.bringup", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("perception", help="perception_node (+ optional sim_camera_node)")
    p.add_argument("--params", "--params-file", dest="params", default=_default_params("perception.yaml"))
    p.add_argument(
        "--image-topic",
        default=IMAGE_TOPIC,
        help=f"camera image topic (default: {IMAGE_TOPIC}, relative to the node's namespace)",
    )
    p.add_argument("--checkpoint", default="", help="override the YAML's checkpoint")
    p.add_argument("--device", default="", choices=("", "auto", "cpu", "cuda"))
    p.add_argument("--backend", default="", choices=("", "auto", "torch", "onnxruntime"))
    p.add_argument("--use-sim-camera", action="store_true", help="also start sim_camera_node")
    p.add_argument("--sim-domain", default="", help="sim_camera_node domain (default: the YAML's)")
    p.add_argument(
        "--cameras",
        default="",
        help="camera namespaces, e.g. front,left,rear: one perception node (and sim camera) per camera, "
        "each under its namespace, one params file (default: one camera, root namespace)",
    )
    p.add_argument("--rviz", action="store_true", help="also start rviz2 with config/sim2sg.rviz (where installed)")
    p.add_argument("--dry-run", action="store_true", help="print the node commands and exit")
    a = sub.add_parser("adaptation", help="adaptation_node (offline, exits when done)")
    a.add_argument("--params", "--params-file", dest="params", default=_default_params("adaptation.yaml"))
    a.add_argument("--bag", action="append", default=[], help="rosbag2 bag (repeat for several)")
    a.add_argument("--topic", default="")
    a.add_argument("--init-checkpoint", default="")
    a.add_argument("--output", default="")
    a.add_argument("--dry-run", action="store_true")
    return ap


def _default_params(name: str) -> str:
    try:
        from sim2sg_core.paths import config_path

        return str(config_path(name))
    except FileNotFoundError:
        return str(Path("config") / name)


def main(argv=None) -> int:
    import tempfile

    args = build_parser().parse_args(argv)
    # the namespaced copy of the params file lives as long as the nodes (the dry run prints its content)
    with tempfile.TemporaryDirectory(prefix="sim2sg_bringup_") as work:
        try:
            if args.what == "perception":
                cmds = perception_commands(
                    args.params,
                    image_topic=args.image_topic,
                    checkpoint=args.checkpoint,
                    device=args.device,
                    backend=args.backend,
                    use_sim_camera=args.use_sim_camera,
                    sim_domain=args.sim_domain,
                    cameras=args.cameras,
                    rviz=args.rviz,
                    workdir=work,
                )
            else:
                cmds = adaptation_commands(
                    args.params,
                    bags=args.bag,
                    topic=args.topic,
                    init_checkpoint=args.init_checkpoint,
                    output=args.output,
                )
        except ValueError as exc:
            print(f"[bringup] error: {exc}", file=sys.stderr)
            return 2
        if args.dry_run:
            for c in cmds:
                print(" ".join(c.argv()))
            for f in sorted(Path(work).glob("*.yaml")):
                print(f"# {f.name} (deleted on exit):\n{f.read_text()}")
            return 0
        return run(cmds)


if __name__ == "__main__":
    sys.exit(main())
