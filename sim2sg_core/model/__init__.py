"""Scene-graph model: encoder φ → Z, CenterNet detection head, relationship head, Predictor."""

from sim2sg_core.model.predictor import Predictor, resolve_device
from sim2sg_core.model.sg_model import MODEL_VERSION, SGModel

__all__ = ["MODEL_VERSION", "Predictor", "SGModel", "resolve_device"]
