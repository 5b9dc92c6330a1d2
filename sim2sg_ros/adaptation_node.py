"""adaptation_node (offline): rosbag2 camera bags + a source-trained checkpoint → adapted checkpoint.

A thin wrapper over :func:`sim2sg_core.adapt.sim2sg.adapt_from_bags`: it reads its parameters
(``config/adaptation.yaml``), runs the adaptation in the foreground, reports progress in the log
and on ``~/progress`` (diagnostic_msgs/DiagnosticStatus: step, total, fraction, phase, losses), and
exits. The core writes the checkpoint atomically and keeps a resumable state file next to it, so
Ctrl-C (or SIGTERM) stops at the next step with the state saved and the same command continues.

Exit status: 0 done; 2 bad input (missing bag, topic not in the bags — the message lists the image
topics that are —, corrupt bag or checkpoint, bad config); 130 interrupted (resumable); 1 other.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.node import Node

from sim2sg_ros.node_runtime import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, run_node
from sim2sg_ros.params import ADAPTATION_NODE, ADAPTATION_PARAMS, declare

EXIT_INTERRUPTED = 130
LOG_EVERY_S = 10.0


class AdaptationNode(Node):
    """Parameters: :data:`sim2sg_ros.params.ADAPTATION_PARAMS`. Work happens in :meth:`run`."""

    def __init__(self, **node_kwargs):
        super().__init__(ADAPTATION_NODE, **node_kwargs)
        self.params = p = declare(self, ADAPTATION_PARAMS)
        self.bags = [b for b in p["bags"] if b]
        if not self.bags:
            raise ValueError(
                f"{ADAPTATION_NODE}: parameter 'bags' is empty; give at least one rosbag2 bag "
                "(-p bags:=\"['path/to/bag']\")"
            )
        missing = [b for b in self.bags if not Path(b).exists()]
        if missing:
            raise ValueError(f"{ADAPTATION_NODE}: bag {missing[0]} does not exist")
        for name in ("init_checkpoint", "output_checkpoint"):
            if not p[name]:
                raise ValueError(f"{ADAPTATION_NODE}: parameter {name!r} is empty")
        if not Path(p["init_checkpoint"]).is_file():
            raise ValueError(f"{ADAPTATION_NODE}: init_checkpoint {p['init_checkpoint']} does not exist")
        self.config = self._load_config()
        self._progress_pub = self.create_publisher(DiagnosticStatus, "~/progress", 10)
        self._last_log = 0.0

    def _load_config(self):
        """config/adapt YAML (``adapt_config``) with this node's non-zero overrides on top."""
        import dataclasses
        from sim2sg_core.adapt.config import load_adapt_config

        p = self.params
        overrides = {"progress_bar": False}  # the node logs progress itself
        for name in ("steps_per_round", "batch_size", "num_threads"):
            if p[name] > 0:
                overrides[name] = int(p[name])
        if p["max_target_images"] >= 0:
            overrides["max_target_images"] = int(p["max_target_images"])
        if p["device"]:
            overrides["device"] = p["device"]
        if p["camera_height"] > 0:  # the rig's calibration: both or neither
            overrides["camera_height"] = float(p["camera_height"])
            overrides["camera_pitch"] = float(p["camera_pitch"])
        if p["camera_info"]:  # intrinsics file (else the bags' CameraInfo is used when present)
            overrides["camera_info"] = str(p["camera_info"])
        cfg = load_adapt_config(p["adapt_config"] or None, overrides)
        if p["rounds"] > 0:  # keep the file's warm-up, clipped to the new number of rounds
            cfg = dataclasses.replace(
                cfg, rounds=int(p["rounds"]), warmup_rounds=min(cfg.warmup_rounds, int(p["rounds"]))
            ).validate()
        return cfg

    def _progress(self, step: int, total: int, metrics: dict) -> None:
        phase = str(metrics.get("phase", "train"))
        status = DiagnosticStatus(
            name=f"{self.get_fully_qualified_name().lstrip('/')}: adaptation",
            hardware_id="sim2sg_ros",
            level=DiagnosticStatus.OK,
            message=phase,
        )
        values = {"step": step, "total": total, "fraction": f"{step / max(total, 1):.4f}", "phase": phase}
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                values[k] = f"{v:.5g}" if isinstance(v, float) else str(v)
        status.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
        if self.context.ok():
            self._progress_pub.publish(status)
        now = time.monotonic()
        if phase != "train" or now - self._last_log >= LOG_EVERY_S or step == total:
            self._last_log = now
            loss = metrics.get("loss")
            self.get_logger().info(
                f"adaptation {phase}: step {step}/{total} ({100.0 * step / max(total, 1):.1f}%)"
                + (f", loss {loss:.4f}" if isinstance(loss, float) else "")
            )

    def run(self) -> int:
        from sim2sg_core.adapt.sim2sg import AdaptationInterrupted, adapt_from_bags
        from sim2sg_core.data.bags import BagError

        p = self.params
        self.get_logger().info(
            f"adapting {p['init_checkpoint']} to {p['topic']} in {', '.join(self.bags)} "
            f"({self.config.total_steps} steps) → {p['output_checkpoint']}"
        )
        stop = threading.Event()

        def on_signal(signum, _frame):
            if stop.is_set():  # a second Ctrl-C: stop now, the last saved state remains
                raise KeyboardInterrupt
            stop.set()  # first: finish the current step, save the state, exit

        # Our handler instead of rclpy's: rclpy's would raise KeyboardInterrupt in the middle of a step.
        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            result = adapt_from_bags(
                p["init_checkpoint"],
                self.bags,
                p["topic"],
                p["output_checkpoint"],
                config=self.config,
                progress_callback=self._progress,
                resume=p["resume"],
                should_stop=stop.is_set,
            )
        except (AdaptationInterrupted, KeyboardInterrupt) as exc:
            if isinstance(exc, KeyboardInterrupt):
                exc = f"adaptation interrupted; the state saved last is in {p['output_checkpoint']}.resume"
            print(f"[WARN] {exc}; run the same command again to resume", file=sys.stderr, flush=True)
            return EXIT_INTERRUPTED
        except (ValueError, OSError, BagError) as exc:  # bag / topic / checkpoint / config: one sentence
            print(f"[ERROR] {ADAPTATION_NODE}: {exc}", file=sys.stderr, flush=True)
            return EXIT_BAD_INPUT
        except RuntimeError as exc:
            print(f"[ERROR] {ADAPTATION_NODE}: adaptation failed: {exc}", file=sys.stderr, flush=True)
            return EXIT_FAILURE
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
        if result.resumed_from_step:
            self.get_logger().info(f"resumed from step {result.resumed_from_step}")
        self.get_logger().info(
            f"wrote adapted checkpoint {result.checkpoint} ({result.steps} steps, {result.seconds:.0f} s)"
        )
        return EXIT_OK


def main(args=None) -> int:
    """``ros2 run sim2sg_ros adaptation_node --ros-args --params-file config/adaptation.yaml [-p ...]``."""
    return run_node(AdaptationNode, args, spin=False)


if __name__ == "__main__":
    sys.exit(main())
