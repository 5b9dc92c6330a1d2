"""ros2 launch sim2sg_ros perception.launch.py [params_file:=...] [image_topic:=...] [checkpoint:=...]
[device:=auto|cpu|cuda] [backend:=auto|torch|onnxruntime] [use_sim_camera:=true] [sim_domain:=target]
[cameras:=[front,left,rear]] [rviz:=true]

Starts perception_node (and, with use_sim_camera, sim_camera_node) with the parameters of
params_file (default: this package's config/perception.yaml; YAML keys are the node names).
checkpoint / device / backend / sim_domain override the YAML only when given. With cameras, one
perception_node (and sim_camera_node) per camera, each under its namespace, all with the params file's
sections. rviz:=true also starts rviz2 with config/sim2sg.rviz (a message instead where rviz2 is not
installed). Without ros2 launch the same bring-up is `python -m sim2sg_ros.bringup perception ...`.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from sim2sg_ros.bringup import RVIZ_MISSING, parse_cameras
from sim2sg_ros.params import PERCEPTION_NODE, SIM_CAMERA_NODE, read_params_yaml
from sim2sg_ros.topics import IMAGE_TOPIC


def _true(context, name: str) -> bool:
    return LaunchConfiguration(name).perform(context).strip().lower() in ("true", "1", "yes")


def _rviz(context):
    if not _true(context, "rviz"):
        return []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix

        get_package_prefix("rviz2")
    except (ImportError, PackageNotFoundError):
        return [LogInfo(msg=RVIZ_MISSING)]
    config = PathJoinSubstitution([FindPackageShare("sim2sg_ros"), "config", "sim2sg.rviz"])
    return [Node(package="rviz2", executable="rviz2", name="rviz2", arguments=["-d", config], output="screen")]


def _nodes(context):
    params_file = LaunchConfiguration("params_file").perform(context)
    image_topic = LaunchConfiguration("image_topic").perform(context)
    checkpoint = LaunchConfiguration("checkpoint").perform(context)
    device = LaunchConfiguration("device").perform(context)
    backend = LaunchConfiguration("backend").perform(context)
    use_sim = _true(context, "use_sim_camera")
    sim_domain = LaunchConfiguration("sim_domain").perform(context)
    cameras = parse_cameras(LaunchConfiguration("cameras").perform(context))

    remappings = [(IMAGE_TOPIC, image_topic)] if image_topic and image_topic != IMAGE_TOPIC else []
    overrides = {}
    if checkpoint:
        overrides["checkpoint"] = checkpoint
    if device:
        overrides["device"] = device
    if backend:
        overrides["backend"] = backend
    if cameras:
        return _camera_nodes(params_file, cameras, remappings, overrides, use_sim, sim_domain) + _rviz(context)
    actions = []
    if use_sim:
        actions.append(
            Node(
                package="sim2sg_ros",
                executable="sim_camera_node",
                name="sim_camera_node",
                output="screen",
                emulate_tty=True,
                remappings=remappings,
                parameters=[params_file] + ([{"domain": sim_domain}] if sim_domain else []),
            )
        )
    actions.append(
        Node(
            package="sim2sg_ros",
            executable="perception_node",
            name="perception_node",
            output="screen",
            emulate_tty=True,
            remappings=remappings,
            parameters=[params_file] + ([overrides] if overrides else []),
        )
    )
    return actions + _rviz(context)


def _camera_nodes(params_file, cameras, remappings, overrides, use_sim, sim_domain):
    """One perception_node (+ sim_camera_node) per camera namespace. A params-file key `perception_node` matches
    the root namespace only, so every node gets the file's sections as a dict (what the bring-up does)."""
    per = read_params_yaml(params_file, PERCEPTION_NODE)
    sim = read_params_yaml(params_file, SIM_CAMERA_NODE)
    actions = []
    for k, ns in enumerate(cameras):
        if use_sim:
            cam = dict(sim, seed=int(sim.get("seed", 0)) + k, **({"domain": sim_domain} if sim_domain else {}))
            actions.append(
                Node(
                    package="sim2sg_ros",
                    executable="sim_camera_node",
                    name="sim_camera_node",
                    namespace=ns,
                    output="screen",
                    emulate_tty=True,
                    remappings=remappings,
                    parameters=[cam],
                )
            )
        actions.append(
            Node(
                package="sim2sg_ros",
                executable="perception_node",
                name="perception_node",
                namespace=ns,
                output="screen",
                emulate_tty=True,
                remappings=remappings,
                parameters=[dict(per, **overrides)],
            )
        )
    return actions


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=PathJoinSubstitution([FindPackageShare("sim2sg_ros"), "config", "perception.yaml"]),
                description="ROS 2 parameters YAML (keys: perception_node, sim_camera_node)",
            ),
            DeclareLaunchArgument(
                "image_topic",
                default_value=IMAGE_TOPIC,
                description="Camera image topic (camera_info is taken from its namespace)",
            ),
            DeclareLaunchArgument(
                "checkpoint", default_value="", description="Model checkpoint; empty = the params file's"
            ),
            DeclareLaunchArgument(
                "device",
                default_value="",
                choices=["", "auto", "cpu", "cuda"],
                description="Inference device; empty = the params file's",
            ),
            DeclareLaunchArgument(
                "backend",
                default_value="",
                choices=["", "auto", "torch", "onnxruntime"],
                description="Inference backend; empty = the params file's",
            ),
            DeclareLaunchArgument(
                "use_sim_camera",
                default_value="false",
                choices=["true", "false"],
                description="Also start sim_camera_node publishing simulator images",
            ),
            DeclareLaunchArgument(
                "sim_domain",
                default_value="",
                description="Simulator domain of sim_camera_node; empty = the params file's",
            ),
            DeclareLaunchArgument(
                "cameras",
                default_value="",
                description="Camera namespaces, e.g. [front,left,rear]: one perception_node (and sim camera) per "
                "camera under its namespace; empty = one camera in the launch namespace",
            ),
            DeclareLaunchArgument(
                "rviz",
                default_value="false",
                choices=["true", "false"],
                description="Also start rviz2 with config/sim2sg.rviz (skipped with a message where not installed)",
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
