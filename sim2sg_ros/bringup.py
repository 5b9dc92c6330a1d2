"""Bring-up without ``ros2 launch``: the same nodes, arguments and YAML as ``launch/*.launch.py``.

    python -m sim2sg_ros.bringup perception --params config/perception.yaml \\
        [--image-topic /camera/image_raw] [--checkpoint FILE] [--device auto|cpu|cuda] \\
        [--backend auto|torch|onnxruntime] [--use-sim-camera] [--sim-domain target]
    python -m sim2sg_ros.bringup adaptation --params config/adaptation.yaml \\
        --bag BAG [--bag BAG2] [--topic T] [--init-checkpoint FILE] [--output FILE]

Each node runs in its own process (``python -m sim2sg_ros.<node> --ros-args --params-file ...``),
exactly what launch_ros would start. SIGINT / SIGTERM are forwarded to every node; the bring-up
exits when a node exits (with that node's status), after stopping the others.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

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

    def argv(self, python: str = sys.executable) -> list[str]:
        cmd = [python, "-m", f"sim2sg_ros.{self.module}", "--ros-args", "-r", f"__node:={self.name}"]
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


def perception_commands(
    params_file: str,
    *,
    image_topic: str = IMAGE_TOPIC,
    checkpoint: str = "",
    device: str = "",
    backend: str = "",
    use_sim_camera: bool = False,
    sim_domain: str = "",
) -> list[NodeCommand]:
    """The processes ``perception.launch.py`` starts, for the same arguments."""
    params_file = str(Path(params_file).resolve())
    read_params_yaml(params_file, PERCEPTION_NODE)  # fail early, naming the file, if it is not a params file
    overrides = {}
    if checkpoint:
        overrides["checkpoint"] = os.path.abspath(checkpoint)
    if device:
        overrides["device"] = device
    if backend:
        overrides["backend"] = backend
    remaps = _image_remaps(image_topic)
    cmds = [NodeCommand("perception_node", PERCEPTION_NODE, params_file, overrides, remaps)]
    if use_sim_camera:
        sim_over = {"domain": sim_domain} if sim_domain else {}
        cmds.insert(0, NodeCommand("sim_camera_node", SIM_CAMERA_NODE, params_file, sim_over, remaps))
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
            print(f"[bringup] starting {c.name}: {' '.join(argv)}", flush=True)
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
                    print(f"[bringup] {c.name} exited with status {rc}", flush=True)
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
    args = build_parser().parse_args(argv)
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
            )
        else:
            cmds = adaptation_commands(
                args.params, bags=args.bag, topic=args.topic, init_checkpoint=args.init_checkpoint, output=args.output
            )
    except ValueError as exc:
        print(f"[bringup] error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        for c in cmds:
            print(" ".join(c.argv()))
        return 0
    return run(cmds)


if __name__ == "__main__":
    sys.exit(main())
