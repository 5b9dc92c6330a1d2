"""Helpers for the ROS node tests: real node processes over real DDS on the test's own domain id.

``ros_domain_id`` / ``ros_env`` (test/conftest.py) isolate every test; here:

* ``node_procs``: start ``python -m sim2sg_ros.<node> --ros-args --params-file <yaml>`` processes
  (their output goes to a log file that failing assertions print); all are stopped with SIGINT at
  the end of the test.
* ``ros_client``: an rclpy context + node in the test process on the same domain, with
  ``spin_until(predicate, timeout)``.
* ``tiny_checkpoint``: a freshly initialised (untrained) model saved with the core's
  ``save_checkpoint`` — the real file format, small and fast, when trained weights are not needed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import pytest
import yaml

rclpy = pytest.importorskip("rclpy", reason="rclpy not importable: run `make setup` and `source scripts/env.sh`")

#: Tiny network input for tests (the node resizes any camera image to it).
TEST_INPUT = (160, 48)
#: Small camera images for tests.
TEST_IMAGE = (320, 96)


class NodeProcess:
    """One node in its own OS process; stop() sends SIGINT and returns the exit status."""

    def __init__(
        self,
        module: str,
        params: dict,
        env: dict,
        workdir: Path,
        name: Optional[str] = None,
        remappings=(),
        extra_args=(),
        namespace: str = "",
    ):
        self.module = module
        self.name = name or module
        ns = namespace.strip("/")
        files = f"{ns}.{self.name}" if ns else self.name
        workdir.mkdir(parents=True, exist_ok=True)
        self.params_file = workdir / f"{files}.params.yaml"
        # a namespaced node reads its parameters under its fully qualified name
        key = f"/{ns}/{self.name}" if ns else self.name
        self.params_file.write_text(yaml.safe_dump({key: {"ros__parameters": params}}))
        self.log_path = workdir / f"{files}.log"
        self._log = open(self.log_path, "w")
        argv = [
            sys.executable,
            "-m",
            f"sim2sg_ros.{module}",
            *extra_args,
            "--ros-args",
            "-r",
            f"__node:={self.name}",
            "--params-file",
            str(self.params_file),
        ]
        if ns:
            argv += ["-r", f"__ns:=/{ns}"]
        for src, dst in remappings:
            argv += ["-r", f"{src}:={dst}"]
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def node_env(ros_env):
    """Child-process environment: the test's domain, one torch/OpenMP thread per node (2 shared cores)."""
    env = dict(ros_env)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
    return env


@pytest.fixture
def node_procs(tmp_path, node_env):
    """``start(module, params, **kw) -> NodeProcess``; every process is stopped after the test."""
    procs: list[NodeProcess] = []

    def start(module: str, params: dict, **kw) -> NodeProcess:
        p = NodeProcess(module, params, kw.pop("env", node_env), tmp_path / "nodes", **kw)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


class RosClient:
    """An rclpy node in the test process, on the test's domain, spun on demand."""

    def __init__(self, domain_id: int):
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("sim2sg_test_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._clients: dict = {}

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)

    def spin_until(self, predicate: Callable[[], bool], timeout: float, watch: Optional[list] = None) -> bool:
        """Spin until ``predicate()``; False on timeout. A watched node process that dies fails the test."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.05)
            for p in watch or ():
                if not p.alive():
                    pytest.fail(f"node {p.name} exited with status {p.proc.returncode}:\n{p.log()[-4000:]}")
        return predicate()

    def call(self, srv_type, name: str, request, timeout: float = 30.0):
        client = self._clients.get(name)
        if client is None:  # one client per service, kept: its DDS endpoints stay matched
            client = self._clients[name] = self.node.create_client(srv_type, name)
            assert client.wait_for_service(timeout_sec=timeout), f"service {name} not available"
        future = client.call_async(request)
        self.spin_until(future.done, timeout)
        assert future.done(), f"service {name} did not answer within {timeout} s"
        return future.result()

    def set_parameters(self, node_name: str, **values):
        """Set parameters through the node's real /set_parameters service; returns the results."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        req = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
        return self.call(SetParameters, f"/{node_name}/set_parameters", req).results

    @staticmethod
    def stamp_ns(stamp) -> int:
        return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)

    @staticmethod
    def diag_values(status) -> dict:
        return {kv.key: kv.value for kv in status.values}

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def ros_client(ros_domain_id):
    client = RosClient(ros_domain_id)
    yield client
    client.close()


def make_tiny_checkpoint(path: Path, seed: int = 0, input_size=TEST_INPUT) -> str:
    """An untrained drive-vocabulary model saved in the real checkpoint format; returns its model_id."""
    import torch
    from sim2sg_core.model.sg_model import SGModel
    from sim2sg_core.sim import Simulator
    from sim2sg_core.train.checkpoint import load_checkpoint, save_checkpoint
    from sim2sg_core.train.config import ExperimentConfig, ModelConfig

    vocab = Simulator(env="drive", domain="source", seed=0).vocab
    cfg = ExperimentConfig(model=ModelConfig(input_width=input_size[0], input_height=input_size[1]))
    torch.manual_seed(seed)
    model = SGModel.from_config(cfg, vocab)
    save_checkpoint(path, model, cfg, vocab, input_size, cfg.model.mean, cfg.model.std)
    return load_checkpoint(path)["model_id"]


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """``make(name='model.pt', seed=0) -> (path, model_id)`` under the test's tmp dir."""

    def make(name: str = "model.pt", seed: int = 0, input_size=TEST_INPUT):
        path = tmp_path / "ckpt" / name
        path.parent.mkdir(exist_ok=True)
        return str(path), make_tiny_checkpoint(path, seed, input_size)

    return make
