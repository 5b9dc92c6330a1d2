"""Package layers: moved modules keep their old import paths, and the perception path stays light.

The layer contract itself is `lint-imports` ([tool.importlinter] in pyproject.toml, run by `make lint`)."""

import json
import subprocess
import sys

import pytest


def test_moved_names_are_the_same_objects_at_their_old_paths():
    from sim2sg_core import geometry, sim
    from sim2sg_core.model import checkpoint, config
    from sim2sg_core.sim import scene
    from sim2sg_core.train import checkpoint as old_checkpoint
    from sim2sg_core.train import config as old_config

    assert sim.Camera is scene.Camera is geometry.Camera
    for name in ("CheckpointError", "load_checkpoint", "model_from_checkpoint", "save_checkpoint", "state_hash"):
        assert getattr(old_checkpoint, name) is getattr(checkpoint, name)
    for name in ("ConfigError", "ExperimentConfig", "ModelConfig", "TrainConfig", "config_from_dict", "load_config"):
        assert getattr(old_config, name) is getattr(config, name)


@pytest.mark.parametrize(
    "module, absent",
    [
        ("sim2sg_core.model.predictor", "sim2sg_core.train"),  # the perception node's path: no training code
        ("sim2sg_core.data.calibration", "sim2sg_core.sim"),  # a calibration is a geometry.Camera, no simulator
        ("sim2sg_core.geometry", "torch"),  # pure numpy camera geometry
    ],
)
@pytest.mark.slow
def test_import_does_not_load(module, absent):
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    assert not [m for m in loaded if m == absent or m.startswith(absent + ".")]


def test_autocast_context_is_a_no_op_on_cpu():
    import torch

    from sim2sg_core.utils.device import autocast_context

    with autocast_context(torch.device("cpu"), True):
        assert (torch.ones(2) * 2).dtype == torch.float32
