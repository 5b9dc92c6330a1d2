"""Launch files (with the real launch_ros where importable) and the launch-free bring-up."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

rclpy = pytest.importorskip("rclpy", reason="rclpy not importable: run `make setup` and `source scripts/env.sh`")

from sim2sg_ros import bringup  # noqa: E402
from sim2sg_ros.topics import IMAGE_TOPIC  # noqa: E402
from sim2sg_ros.params import (  # noqa: E402
    ADAPTATION_PARAMS,
    PERCEPTION_PARAMS,
    SIM_CAMERA_PARAMS,
    read_params_yaml,
    spec_map,
    validate,
)

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]
LAUNCH_DIR = REPO / "launch"
CONFIG = REPO / "config"


# ------------------------------------------------------------------ config files and parameter tables


@pytest.mark.parametrize(
    "yaml_name,node,specs",
    [
        ("perception.yaml", "perception_node", PERCEPTION_PARAMS),
        ("perception.yaml", "sim_camera_node", SIM_CAMERA_PARAMS),
        ("adaptation.yaml", "adaptation_node", ADAPTATION_PARAMS),
    ],
)
def test_shipped_yaml_keys_are_declared_parameters_with_valid_values(yaml_name, node, specs):
    values = read_params_yaml(CONFIG / yaml_name, node)
    assert values, f"{yaml_name} has no ros__parameters for {node}"
    table = spec_map(specs)
    for k, v in values.items():
        assert k in table, f"{yaml_name}: {node}.{k} is not a declared parameter"
        assert validate(table[k], v) is None, validate(table[k], v)
        assert type(v) is type(table[k].default) or (
            isinstance(v, (int, float)) and isinstance(table[k].default, float)
        ), k


def test_parameter_validation_rejects_out_of_range_and_unknown_choices():
    t = spec_map(PERCEPTION_PARAMS)
    assert validate(t["score_threshold"], 1.5) and validate(t["score_threshold"], -0.1)
    assert validate(t["score_threshold"], 0.5) is None
    assert validate(t["max_objects"], 0) and validate(t["max_objects"], 10) is None
    assert "one of" in validate(t["device"], "tpu")
    assert t["device"].read_only and not t["score_threshold"].read_only


def test_bad_start_up_parameter_exits_with_one_sentence(tmp_path, node_procs):
    p = node_procs("perception_node", {"score_threshold": 2.0, "checkpoint": ""})
    assert p.wait(timeout=60) == 2
    assert "score_threshold" in p.log() and "Traceback" not in p.log()
    q = node_procs("perception_node", {"device": "tpu"}, name="perception_node")
    assert q.wait(timeout=60) == 2
    assert "device" in q.log() and "tpu" in q.log()


def test_params_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("perception_node: {checkpoint: x}\n")
    with pytest.raises(ValueError, match="bad.yaml.*ros__parameters"):
        read_params_yaml(bad, "perception_node")
    with pytest.raises(ValueError, match="does not exist"):
        read_params_yaml(tmp_path / "missing.yaml", "perception_node")


# ------------------------------------------------------------------ bring-up without launch


def _launch_arguments(launch_file: Path) -> dict:
    """``{name: choices or None}`` of every DeclareLaunchArgument in a launch file, read from its source (the
    real launch package is not on PyPI, so the file cannot always be imported)."""
    found = {}
    for node in ast.walk(ast.parse(launch_file.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument":
            kw = {k.arg: k.value for k in node.keywords}
            choices = ast.literal_eval(kw["choices"]) if "choices" in kw else None
            found[ast.literal_eval(node.args[0])] = choices
    return found


def test_bringup_takes_the_perception_launch_files_arguments():
    """Every launch argument of perception.launch.py is a bring-up option with the same choices, and back."""
    launch_args = _launch_arguments(LAUNCH_DIR / "perception.launch.py")
    assert {"params_file", "checkpoint", "device", "backend"} <= set(launch_args)
    sub = next(a for a in bringup.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    options = {a.dest: a for a in sub.choices["perception"]._actions if a.dest not in ("help", "dry_run")}
    options["params_file"] = options.pop("params")
    assert set(options) == set(launch_args)
    for name, choices in launch_args.items():
        if choices == ["true", "false"]:  # a launch boolean is a bring-up flag
            assert isinstance(options[name], argparse._StoreTrueAction), name
        elif choices is not None:
            assert tuple(options[name].choices) == tuple(choices), name
    assert set(launch_args["device"]) - {""} == set(spec_map(PERCEPTION_PARAMS)["device"].choices)
    assert set(launch_args["backend"]) - {""} == set(spec_map(PERCEPTION_PARAMS)["backend"].choices)


def test_bringup_commands_match_the_launch_arguments(tmp_path):
    cmds = bringup.perception_commands(
        str(CONFIG / "perception.yaml"),
        image_topic="/front/image",
        checkpoint="m.pt",
        device="cpu",
        backend="onnxruntime",
        use_sim_camera=True,
        sim_domain="target2",
    )
    assert [c.name for c in cmds] == ["sim_camera_node", "perception_node"]
    cam, per = (c.argv() for c in cmds)
    for argv in (cam, per):
        assert argv[argv.index("--params-file") + 1] == str((CONFIG / "perception.yaml").resolve())
        assert f"{IMAGE_TOPIC}:=/front/image" in argv
    assert f"checkpoint:={os.path.abspath('m.pt')}" in per and "device:=cpu" in per
    assert "backend:=onnxruntime" in per and not any(a.startswith("backend:=") for a in cam)
    assert "domain:=target2" in cam and "__node:=perception_node" in per
    cmds = bringup.adaptation_commands(str(CONFIG / "adaptation.yaml"), bags=["a", "b"], topic="/t")
    argv = cmds[0].argv()
    assert f"bags:=['{os.path.abspath('a')}', '{os.path.abspath('b')}']" in argv and "topic:=/t" in argv


@pytest.mark.slow
def test_bringup_runs_sim_camera_and_perception_and_forwards_sigint(tmp_path, node_env, ros_client, tiny_checkpoint):
    """`python -m sim2sg_ros.bringup perception --use-sim-camera`: graphs arrive; SIGINT stops every node."""
    from sim2sg_ros.msg import SceneGraph

    ckpt, model_id = tiny_checkpoint()
    params = yaml.safe_load((CONFIG / "perception.yaml").read_text())
    params["perception_node"]["ros__parameters"].update(num_threads=1, checkpoint="will be overridden")
    params["sim_camera_node"]["ros__parameters"].update(width=320, height=96, cache_frames=4, rate=8.0)
    pfile = tmp_path / "params.yaml"
    pfile.write_text(yaml.safe_dump(params))
    graphs = []
    ros_client.node.create_subscription(SceneGraph, "/scene_graph", graphs.append, 10)
    log = open(tmp_path / "bringup.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sim2sg_ros.bringup",
            "perception",
            "--params",
            str(pfile),
            "--checkpoint",
            ckpt,
            "--use-sim-camera",
            "--sim-domain",
            "target2",
            "--image-topic",
            "/front/image",
        ],
        env=node_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        ok = ros_client.spin_until(lambda: len(graphs) >= 3 or proc.poll() is not None, 120)
        assert ok and proc.poll() is None, (tmp_path / "bringup.log").read_text()[-3000:]
        assert all(g.model_id == model_id for g in graphs)
        names = ros_client.node.get_node_names()
        assert "perception_node" in names and "sim_camera_node" in names
        children = _children(proc.pid)
        assert len(children) == 2, children
        topics = dict(ros_client.node.get_topic_names_and_types())
        assert "/front/image" in topics and "/front/camera_info" in topics and "/camera/image_raw" not in topics
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    text = (tmp_path / "bringup.log").read_text()
    assert "perception_node exited with status 0" in text or "sim_camera_node exited with status 0" in text
    assert not [c for c in children if Path(f"/proc/{c}").exists() and _state(c) != "Z"], "a node outlived the bring-up"


def _children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


# ------------------------------------------------------------------ launch files with the real launch_ros


def _real_launch():
    try:
        import launch
        import launch_ros  # noqa: F401
    except ImportError as exc:
        pytest.skip(
            f"launch / launch_ros are not importable ({exc}): they are not on PyPI, so no ROS 2 launch "
            "here; on a stock Jazzy install (source /opt/ros/jazzy/setup.bash) this test runs"
        )
    if not hasattr(launch, "LaunchDescription"):
        pytest.skip(
            "only this repository's launch/ folder is importable as `launch` (a namespace package); "
            "the real launch package is not installed"
        )
    return launch


def _load_launch(name):
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), LAUNCH_DIR / name)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.generate_launch_description()


def _expand(ld, args: dict):
    """Visit the description like `ros2 launch` does: arguments, then the OpaqueFunction's node actions."""
    launch = _real_launch()
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch_ros.actions import Node

    ctx = launch.LaunchContext()
    for k, v in args.items():
        ctx.launch_configurations[k] = v
    nodes = []
    declared = []
    for e in ld.entities:
        if isinstance(e, DeclareLaunchArgument):
            declared.append(e.name)
            e.visit(ctx)
        elif isinstance(e, OpaqueFunction):
            for a in e.visit(ctx) or []:
                if isinstance(a, Node):
                    a._perform_substitutions(ctx)
                    nodes.append(a)
    return declared, nodes, ctx


def _params_of(node) -> dict:
    """Merged parameters a Node action passes: its params files and generated dicts, in order."""
    out = {}
    for arg, is_file in node._Node__expanded_parameter_arguments:
        assert is_file
        # launch_ros writes list parameters as !!python/tuple (rcl's parser reads them as arrays)
        data = yaml.load(Path(arg).read_text(), Loader=yaml.FullLoader)
        for key in ("/**", node.node_name.rsplit("/", 1)[-1]):
            out.update((data.get(key) or {}).get("ros__parameters", {}))
    return out


def test_perception_launch_file_with_real_launch_ros(tmp_path):
    _real_launch()
    ld = _load_launch("perception.launch.py")
    declared, nodes, _ = _expand(ld, {})
    assert set(declared) >= {"params_file", "image_topic", "checkpoint", "device", "use_sim_camera", "sim_domain"}
    assert [(n.node_package, n.node_executable, n.node_name.rsplit("/", 1)[-1]) for n in nodes] == [
        ("sim2sg_ros", "perception_node", "perception_node")
    ]
    p = _params_of(nodes[0])
    assert p == read_params_yaml(CONFIG / "perception.yaml", "perception_node")  # defaults: the shipped YAML

    ld = _load_launch("perception.launch.py")
    _, nodes, _ = _expand(
        ld,
        {
            "params_file": str(CONFIG / "perception.yaml"),
            "image_topic": "/front/image",
            "checkpoint": "/models/m.pt",
            "device": "cpu",
            "use_sim_camera": "true",
            "sim_domain": "target2",
        },
    )
    assert [n.node_executable for n in nodes] == ["sim_camera_node", "perception_node"]
    cam, per = nodes
    assert per.expanded_remapping_rules == [(IMAGE_TOPIC, "/front/image")]
    assert cam.expanded_remapping_rules == [(IMAGE_TOPIC, "/front/image")]
    pp, cp = _params_of(per), _params_of(cam)
    assert pp["checkpoint"] == "/models/m.pt" and pp["device"] == "cpu"
    assert pp["score_threshold"] == read_params_yaml(CONFIG / "perception.yaml", "perception_node")["score_threshold"]
    assert cp["domain"] == "target2" and cp["env"] == "drive"
    # the bring-up builds the same processes for the same arguments
    cmds = bringup.perception_commands(
        str(CONFIG / "perception.yaml"),
        image_topic="/front/image",
        checkpoint="/models/m.pt",
        device="cpu",
        use_sim_camera=True,
        sim_domain="target2",
    )
    assert [c.name for c in cmds] == [n.node_executable for n in nodes]
    assert cmds[1].overrides == {"checkpoint": "/models/m.pt", "device": "cpu"}


def test_perception_launch_with_cameras_starts_one_namespaced_pair_per_camera():
    """cameras:=[front,rear]: a sim camera and a perception node per namespace, each with the params file's
    section (the bring-up's namespaced file holds the same values); rviz:=true without rviz2 adds no node."""
    _real_launch()
    ld = _load_launch("perception.launch.py")
    _, nodes, _ = _expand(
        ld,
        {
            "params_file": str(CONFIG / "perception.yaml"),
            "checkpoint": "/models/m.pt",
            "use_sim_camera": "true",
            "cameras": "[front, rear]",
            "rviz": "true",
        },
    )
    names = [(n.node_executable, n.expanded_node_namespace) for n in nodes if n.node_package == "sim2sg_ros"]
    assert names == [
        ("sim_camera_node", "/front"),
        ("perception_node", "/front"),
        ("sim_camera_node", "/rear"),
        ("perception_node", "/rear"),
    ]
    per = [n for n in nodes if n.node_executable == "perception_node"]
    expected = dict(read_params_yaml(CONFIG / "perception.yaml", "perception_node"), checkpoint="/models/m.pt")
    assert all(_params_of(n) == expected for n in per)
    seeds = [_params_of(n)["seed"] for n in nodes if n.node_executable == "sim_camera_node"]
    assert seeds[1] == seeds[0] + 1


def test_perception_launch_rejects_a_bad_device_choice():
    _real_launch()
    ld = _load_launch("perception.launch.py")
    with pytest.raises(Exception, match="device"):
        _expand(ld, {"device": "tpu"})


def test_adaptation_launch_file_with_real_launch_ros():
    _real_launch()
    ld = _load_launch("adaptation.launch.py")
    declared, nodes, _ = _expand(
        ld, {"bags": "['/data/a', '/data/b']", "init_checkpoint": "/m/src.pt", "output_checkpoint": "/m/out.pt"}
    )
    assert {"params_file", "bags", "topic", "init_checkpoint", "output_checkpoint"} <= set(declared)
    assert [(n.node_executable, n.node_name.rsplit("/", 1)[-1]) for n in nodes] == [
        ("adaptation_node", "adaptation_node")
    ]
    p = _params_of(nodes[0])
    assert list(p["bags"]) == ["/data/a", "/data/b"] and p["init_checkpoint"] == "/m/src.pt"
    assert p["output_checkpoint"] == "/m/out.pt" and p["topic"] == "/camera/image_raw"


LAUNCH_RUNNER = """
import sys
import launch
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
args = dict(a.split(':=', 1) for a in sys.argv[2:])
ls = launch.LaunchService(noninteractive=True)
ls.include_launch_description(launch.LaunchDescription([IncludeLaunchDescription(
    PythonLaunchDescriptionSource(sys.argv[1]), launch_arguments=args.items())]))
sys.exit(ls.run())
"""


def test_perception_launch_runs_for_real(tmp_path, node_env, ros_client, tiny_checkpoint):
    """`ros2 launch` equivalent (the real LaunchService in its own process) starts the installed
    executables; graphs arrive; SIGINT shuts everything down."""
    _real_launch()
    from sim2sg_ros.msg import SceneGraph

    ckpt, model_id = tiny_checkpoint()
    params = yaml.safe_load((CONFIG / "perception.yaml").read_text())
    params["perception_node"]["ros__parameters"].update(num_threads=1)
    params["sim_camera_node"]["ros__parameters"].update(width=320, height=96, cache_frames=4, rate=8.0)
    pfile = tmp_path / "params.yaml"
    pfile.write_text(yaml.safe_dump(params))
    graphs = []
    ros_client.node.create_subscription(SceneGraph, "/scene_graph", graphs.append, 10)
    log = open(tmp_path / "launch.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            LAUNCH_RUNNER,
            str(LAUNCH_DIR / "perception.launch.py"),
            f"params_file:={pfile}",
            f"checkpoint:={ckpt}",
            "use_sim_camera:=true",
        ],
        env=node_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        ok = ros_client.spin_until(lambda: len(graphs) >= 3 or proc.poll() is not None, 120)
        assert ok and proc.poll() is None, (tmp_path / "launch.log").read_text()[-3000:]
        assert all(g.model_id == model_id for g in graphs)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, (tmp_path / "launch.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
