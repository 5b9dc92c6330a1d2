"""Rendering: scene description + appearance → RGB image, instance-id map and exact labels.

Objects are shaded 3-D primitives filled back to front with OpenCV; every fill is repeated into an
instance-id map, so a label's box is *exactly* the extent of the object's visible pixels
(pixel-edge convention: ``x_max = last column + 1``). Objects failing the environment's label filter
are drawn (they occlude) but unlabelled: their visible box becomes an ignore region.

Modules, in drawing order: ``look`` (per-image draws), ``street`` (facades, skyline, building
shadows, bonnet), ``background`` (sky and ground regions via a cached layout), ``objects``
(primitives and their shadows; ``shapes`` picks shapes and colours, ``templates`` holds their
geometry), ``labels``, ``sensor``; ``raster`` has the shared fill primitives and ``renderer`` the
orchestrating :class:`Renderer`. Street looks (options only some domains set) never run for the
other domains, whose images stay as they were.
"""

from sim2sg_core.sim.render.raster import NEAR, RASTER_PAD
from sim2sg_core.sim.render.renderer import Renderer, RenderResult
from sim2sg_core.sim.render.shapes import weighted_palette_index
from sim2sg_core.sim.render.templates import (
    ShapeTemplate,
    build_template,
    object_geometry,
    projected_extent,
    template_for,
)

_build_template = build_template  # the name tests import

__all__ = [
    "NEAR",
    "RASTER_PAD",
    "Renderer",
    "RenderResult",
    "ShapeTemplate",
    "build_template",
    "object_geometry",
    "projected_extent",
    "template_for",
    "weighted_palette_index",
]
