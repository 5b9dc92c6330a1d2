"""sim2sg_ros: the thin ROS 2 layer over sim2sg_core (conversions and nodes).

In a colcon install space this package directory is shared with the rosidl-generated messages
(`sim2sg_ros.msg`). When the source tree is imported first, extend_path lets `sim2sg_ros.msg`
still resolve to the generated package found later on sys.path.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
