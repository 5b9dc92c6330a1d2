"""ros2 launch sim2sg_ros perception.launch.py [params_file:=...] [image_topic:=...] [checkpoint:=...]
[device:=auto|cpu|cuda] [backend:=auto|torch|onnxruntime] [use_sim_camera:=true] [sim_domain:=target]

Starts perception_node (and, with use_sim_camera, sim_camera_node) with the parameters of
params_file (default: this package's config/perception.yaml; YAML keys are the node names).
checkpoint / device / backend / sim_domain override the YAML only when given. Without ros2 launch the same
bring-up is `python -m sim2sg_ros.bringup perception ...`.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from sim2sg_ros.topics import IMAGE_TOPIC


def _nodes(context):
    params_file = LaunchConfiguration("params_file").perform(context)
    image_topic = LaunchConfiguration("image_topic").perform(context)
    checkpoint = LaunchConfiguration("checkpoint").perform(context)
    device = LaunchConfiguration("device").perform(context)
    backend = LaunchConfiguration("backend").perform(context)
    use_sim = LaunchConfiguration("use_sim_camera").perform(context).strip().lower() in ("true", "1", "yes")
    sim_domain = LaunchConfiguration("sim_domain").perform(context)

    remappings = [(IMAGE_TOPIC, image_topic)] if image_topic and image_topic != IMAGE_TOPIC else []
    overrides = {}
    if checkpoint:
        overrides["checkpoint"] = checkpoint
    if device:
        overrides["device"] = device
    if backend:
        overrides["backend"] = backend
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
            OpaqueFunction(function=_nodes),
        ]
    )
