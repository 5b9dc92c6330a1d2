"""Environment and domain configuration: YAML under ``config/sim/`` → plain dataclasses.

An environment file (``config/sim/<env>.yaml``) holds the vocabulary, the class priors (size,
shape parts, colours), the ground layout and the label filter, plus a ``domains:`` mapping. Each
domain has ``content`` (the named distributions the generator samples from and label alignment
re-fits) and ``appearance`` (how the scene is drawn). A domain may ``inherit`` another and
override only what differs; dictionaries are merged recursively. Adding an environment needs no
code: write a new YAML file. The dataclasses are built by the one config system
(:func:`sim2sg_core.config.from_dict`: typed fields, unknown keys rejected, file + key path in errors);
the converters in :data:`config_base.CONVERTERS` add the YAML shorthands (scalar ranges, RGB triples, scalar
Gaussians) and the per-type checks.

The modules: ``config_base`` (value types, the error, the config folder, the converter registry),
``environment`` (environments), ``content`` (content distributions), ``appearance`` (appearance); this module
resolves a domain (inheritance) into content + appearance, and re-exports their names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from sim2sg_core.config import deep_merge
from sim2sg_core.sim.appearance import (
    AppearanceConfig,
    FacadeConfig,
    GroundLayout,
    HoodConfig,
    ShapeVariant,
    parse_appearance,
)
from sim2sg_core.sim.config_base import DECALS, SimConfigError, available_environments, sim_config_dir
from sim2sg_core.sim.content import (
    CameraContent,
    ClassContent,
    ContentConfig,
    Gaussian,
    Lateral,
    SizeMixture,
    content_to_dict,
    parse_content,
)
from sim2sg_core.sim.environment import (
    ClassPrior,
    EnvironmentConfig,
    GroundZone,
    LabelFilter,
    PartSpec,
    load_environment,
)


@dataclass(frozen=True)
class DomainConfig:
    env: str
    name: str
    content: ContentConfig
    appearance: AppearanceConfig


def domain_names(env: Union[str, EnvironmentConfig]) -> list[str]:
    return list(load_environment(env).domains)


def _merged_domain_dict(env: EnvironmentConfig, name: str, seen=()) -> dict:
    if name not in env.domains:
        raise SimConfigError(
            f"{env.source_path}: environment {env.name!r} has no domain {name!r}; known: {list(env.domains)}"
        )
    if name in seen:
        raise SimConfigError(f"{env.source_path}: domain inheritance cycle {list(seen) + [name]}")
    d = env.domains[name] or {}
    parent = d.get("inherit")
    base = _merged_domain_dict(env, parent, seen + (name,)) if parent else {}
    own = {k: v for k, v in d.items() if k != "inherit"}
    return deep_merge(base, own)


def load_domain(env: Union[str, EnvironmentConfig], domain: str) -> DomainConfig:
    """Domain ``domain`` of environment ``env`` (inheritance resolved) as a :class:`DomainConfig`."""
    envc = load_environment(env)
    d = _merged_domain_dict(envc, domain)
    where = f"{envc.source_path}: domains.{domain}"
    unknown = set(d) - {"content", "appearance"}
    if unknown:
        raise SimConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    if "content" not in d or "appearance" not in d:
        raise SimConfigError(f"{where}: needs both 'content' and 'appearance'")
    return DomainConfig(
        env=envc.name,
        name=domain,
        content=parse_content(d["content"], envc, f"{where}.content"),
        appearance=parse_appearance(d["appearance"], envc, f"{where}.appearance"),
    )


__all__ = [
    "DECALS",
    "AppearanceConfig",
    "CameraContent",
    "ClassContent",
    "ClassPrior",
    "ContentConfig",
    "DomainConfig",
    "EnvironmentConfig",
    "FacadeConfig",
    "Gaussian",
    "GroundLayout",
    "GroundZone",
    "HoodConfig",
    "LabelFilter",
    "Lateral",
    "PartSpec",
    "ShapeVariant",
    "SimConfigError",
    "SizeMixture",
    "available_environments",
    "sim_config_dir",
    "content_to_dict",
    "domain_names",
    "load_domain",
    "load_environment",
]
