"""sim2sg_core: the ROS-free Sim2SG library (simulator, model, training, adaptation, evaluation)."""

from sim2sg_core.scene_graph import (
    PREDICATES,
    Relationship,
    SceneGraph,
    SceneGraphError,
    SceneObject,
    Vocabulary,
    derive_relationships,
    spatial_predicate,
)

# The one version source: pyproject.toml reads it (dynamic version); package.xml repeats it for ROS
# tools and test/foundation/test_version.py keeps the two equal.
__version__ = "0.1.0"

__all__ = [
    "PREDICATES",
    "Relationship",
    "SceneGraph",
    "SceneGraphError",
    "SceneObject",
    "Vocabulary",
    "derive_relationships",
    "spatial_predicate",
    "__version__",
]
