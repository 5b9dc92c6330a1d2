"""Data I/O: image codecs (ROS encodings), KITTI object format, rosbag2 image bags, torch datasets.

Submodules are imported on use so that e.g. the ROS node can use ``image_codec`` without torch.
"""
