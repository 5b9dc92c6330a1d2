"""ros2 launch sim2sg_ros adaptation.launch.py bags:="['path/to/bag']" [topic:=/camera/image_raw]
[init_checkpoint:=...] [output_checkpoint:=...] [params_file:=...]

Runs adaptation_node (offline: reads the bags, adapts, writes the checkpoint, exits; the launch
shuts down with it). Without ros2 launch: `python -m sim2sg_ros.bringup adaptation --bag ...`.
"""

import yaml

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def _nodes(context):
    params_file = LaunchConfiguration("params_file").perform(context)
    overrides = {}
    bags = LaunchConfiguration("bags").perform(context).strip()
    if bags:
        parsed = yaml.safe_load(bags)
        overrides["bags"] = [str(b) for b in (parsed if isinstance(parsed, list) else [parsed])]
    for name in ("topic", "init_checkpoint", "output_checkpoint"):
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    node = Node(
        package="sim2sg_ros",
        executable="adaptation_node",
        name="adaptation_node",
        output="screen",
        emulate_tty=True,
        parameters=[params_file] + ([overrides] if overrides else []),
    )
    return [
        node,
        RegisterEventHandler(
            OnProcessExit(target_action=node, on_exit=[EmitEvent(event=Shutdown(reason="adaptation done"))])
        ),
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=PathJoinSubstitution([FindPackageShare("sim2sg_ros"), "config", "adaptation.yaml"]),
                description="ROS 2 parameters YAML (key: adaptation_node)",
            ),
            DeclareLaunchArgument(
                "bags", default_value="", description="YAML list of rosbag2 bags, e.g. \"['a', 'b']\""
            ),
            DeclareLaunchArgument(
                "topic", default_value="", description="Image topic in the bags; empty = the params file's"
            ),
            DeclareLaunchArgument("init_checkpoint", default_value="", description="Source-trained checkpoint"),
            DeclareLaunchArgument("output_checkpoint", default_value="", description="Adapted checkpoint to write"),
            OpaqueFunction(function=_nodes),
        ]
    )
