"""The built-in scene simulator: environments × domains → images with exact scene-graph labels.

``Simulator(env='drive', domain='source', seed=0).sample(i)`` is a pure function of
``(seed, i)``: it draws a scene from the domain's content distributions, renders it in the
domain's appearance and returns the image with its labels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Union

import numpy as np

from sim2sg_core.geometry import Camera
from sim2sg_core.scene_graph import SceneGraph
from sim2sg_core.sim.domains import (
    AppearanceConfig,
    ContentConfig,
    DomainConfig,
    EnvironmentConfig,
    SimConfigError,
    available_environments,
    domain_names,
    load_domain,
    load_environment,
)
from sim2sg_core.sim.generate import SceneGenerator, base_camera
from sim2sg_core.sim.render import Renderer, RenderResult
from sim2sg_core.sim.scene import ObjectSpec, SceneDescription


@dataclass
class Sample:
    image: np.ndarray  # RGB uint8 H×W×3
    graph: SceneGraph  # exact labels
    scene: SceneDescription  # what was rendered
    instance_map: Optional[np.ndarray] = None  # uint16 H×W, 0 = background, k+1 = scene.objects[k]


class Simulator:
    """One environment and domain; deterministic per ``(seed, index)``, independent of call order.

    ``env``/``domain`` are names (``config/sim/<env>.yaml``) or loaded configs; ``content``
    overrides the domain's content distributions (e.g. a re-fitted prior from label alignment);
    ``image_size`` = (width, height) overrides the environment default.

    ``camera`` (a calibrated :class:`Camera`, e.g. from :func:`sim2sg_core.data.calibration.load_camera`)
    replaces the environment's from-fov camera: scenes are generated and rendered through its
    intrinsics. ``image_size`` then defaults to the camera's size; given both, the camera is
    :meth:`Camera.scaled` to ``image_size`` (per axis: another aspect gives non-square pixels, the
    caller's choice). The per-scene pose (height, pitch) is still drawn from the domain's content
    distributions (domain-randomisation jitter keeps working); ``camera_pose_from_camera=True``
    moves those distributions' means to the camera's ``height_m``/``pitch`` first
    (:meth:`ContentConfig.with_camera_pose`). Without ``camera`` nothing changes.
    """

    def __init__(
        self,
        env: Union[str, EnvironmentConfig] = "drive",
        domain: Union[str, DomainConfig] = "source",
        seed: int = 0,
        image_size: Optional[tuple[int, int]] = None,
        content: Optional[ContentConfig] = None,
        appearance: Optional[AppearanceConfig] = None,
        camera: Optional[Camera] = None,
        camera_pose_from_camera: bool = False,
    ):
        self.env = load_environment(env)
        self.domain = domain if isinstance(domain, DomainConfig) else load_domain(self.env, domain)
        if self.domain.env != self.env.name:
            raise SimConfigError(
                f"domain {self.domain.name!r} belongs to environment {self.domain.env!r}, not {self.env.name!r}"
            )
        if content is not None or appearance is not None:
            self.domain = replace(
                self.domain, content=content or self.domain.content, appearance=appearance or self.domain.appearance
            )
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)
        #: The calibrated camera as given (None = the environment's from-fov camera).
        self.calibrated_camera = camera
        self.camera_pose_from_camera = bool(camera_pose_from_camera)
        if camera is None:
            if camera_pose_from_camera:
                raise ValueError("camera_pose_from_camera=True needs a camera")
            w, h = image_size or self.env.image_size
            self.image_size: tuple[int, int] = (int(w), int(h))
            self.camera = base_camera(self.env, self.image_size)
        else:
            if not isinstance(camera, Camera):
                raise TypeError(f"camera must be a sim2sg_core.sim.Camera, got {type(camera).__name__}")
            w, h = image_size or (camera.width, camera.height)
            self.image_size = (int(w), int(h))
            self.camera = camera.scaled(*self.image_size)
            if camera_pose_from_camera:
                self.domain = replace(
                    self.domain, content=self.domain.content.with_camera_pose(camera.height_m, camera.pitch)
                )
        self.generator = SceneGenerator(env=self.env, content=self.domain.content, camera=self.camera)
        self.renderer = Renderer(self.env)
        self._appearances: dict = {}

    @classmethod
    def from_names(cls, env: str, domain: str, seed: int = 0, **kw) -> "Simulator":
        return cls(env=env, domain=domain, seed=seed, **kw)

    @classmethod
    def from_config(cls, cfg) -> "Simulator":
        """From a mapping or object with ``env``, ``domain`` and optional ``seed``, ``image_size``."""
        get = (lambda k, d=None: cfg.get(k, d)) if isinstance(cfg, dict) else (lambda k, d=None: getattr(cfg, k, d))
        size = get("image_size")
        return cls(
            env=get("env", "drive"),
            domain=get("domain", "source"),
            seed=int(get("seed", 0) or 0),
            image_size=tuple(size) if size else None,
        )

    @property
    def vocab(self):
        return self.env.vocab

    @property
    def content(self) -> ContentConfig:
        return self.domain.content

    @property
    def appearance(self) -> AppearanceConfig:
        return self.domain.appearance

    def with_content(self, content: ContentConfig) -> "Simulator":
        """Same environment, appearance, seed, size and camera with other content distributions
        (used as given: the camera-pose override is not re-applied to them)."""
        return Simulator(
            self.env,
            self.domain,
            seed=self.seed,
            image_size=self.image_size,
            content=content,
            camera=self.calibrated_camera,
        )

    def _rng(self, index: int) -> np.random.Generator:
        if index < 0:
            raise IndexError(f"sample index must be >= 0, got {index}")
        return np.random.default_rng(np.random.SeedSequence([self.seed, int(index)]))

    def scene(self, index: int) -> SceneDescription:
        """The scene description of sample ``index`` (without rendering)."""
        return self.generator.generate(self._rng(index))

    def sample(self, index: int) -> Sample:
        scene = self.scene(index)
        res = self.renderer.render(scene, self.appearance)
        return Sample(image=res.image, graph=res.graph, scene=scene, instance_map=res.instance_map)

    def _resolve_appearance(self, appearance) -> AppearanceConfig:
        if appearance is None:
            return self.appearance
        if isinstance(appearance, AppearanceConfig):
            return appearance
        if isinstance(appearance, DomainConfig):
            return appearance.appearance
        if isinstance(appearance, str):
            if appearance not in self._appearances:
                self._appearances[appearance] = load_domain(self.env, appearance).appearance
            return self._appearances[appearance]
        raise TypeError(f"appearance must be None, a domain name or an AppearanceConfig, got {type(appearance)}")

    def render_full(self, scene: SceneDescription, appearance=None) -> RenderResult:
        """Render a given scene (e.g. reconstructed) in ``appearance`` (None = this domain's, or a
        domain name such as ``'source'``); returns image, instance map and labels."""
        return self.renderer.render(scene, self._resolve_appearance(appearance))

    def render(self, scene: SceneDescription, appearance=None) -> tuple[np.ndarray, SceneGraph]:
        res = self.render_full(scene, appearance)
        return res.image, res.graph

    def __repr__(self) -> str:
        cam = "" if self.calibrated_camera is None else f", camera=calibrated (hfov {self.camera.hfov_deg:.1f} deg)"
        return (
            f"Simulator(env={self.env.name!r}, domain={self.domain.name!r}, seed={self.seed}, "
            f"image_size={self.image_size}{cam})"
        )


__all__ = [
    "Camera",
    "ContentConfig",
    "DomainConfig",
    "EnvironmentConfig",
    "AppearanceConfig",
    "ObjectSpec",
    "Sample",
    "SceneDescription",
    "SimConfigError",
    "Simulator",
    "available_environments",
    "domain_names",
    "load_domain",
    "load_environment",
]
