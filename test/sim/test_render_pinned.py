"""Rendered pixels and labels are pinned: a refactoring of the renderer must not change one bit.

Every domain (street looks included) renders a few small scenes, one hand-made scene reaches
behind the near plane (clipping) and one goes through a calibrated off-centre camera. The
SHA-256 of the image, the instance map and the label graph (as JSON) must equal the pinned
values. After an intended change of the look, regenerate them with
``python test/sim/test_render_pinned.py`` and paste the printed table here.
"""

from __future__ import annotations

import functools
import hashlib
import json

import numpy as np
import pytest

from sim2sg_core.sim import Camera, ObjectSpec, SceneDescription, Simulator

DOMAINS = {
    "drive": ("source", "randomized", "target", "street", "street_randomized", "street_eu", "street_eu_randomized"),
    "clevr": ("source", "target"),
    "dining": ("source", "target"),
}
#: small images keep the test fast; street domains get a wider aspect like their real cameras
SIZES = {"drive": (256, 96), "clevr": (160, 120), "dining": (160, 120)}
STREET_SIZE = (256, 144)
INDICES = (0, 1, 3)  # drive/street_randomized/1: the bonnet covers a car (its occlusion)
#: nuScenes-like front camera: principal point right of and below the centre
REAL = Camera(fx=1266.417, fy=1266.417, cx=816.267, cy=491.507, width=1600, height=900, height_m=1.5, pitch=0.0)


def _digest(res) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(res.image).tobytes())
    h.update(np.ascontiguousarray(res.instance_map).tobytes())
    h.update(json.dumps(res.graph.to_dict(), sort_keys=True).encode())
    return h.hexdigest()[:32]


@functools.lru_cache(maxsize=None)
def _sim(env: str, dom: str, size: tuple[int, int]) -> Simulator:
    """One simulator per domain, so later images also go through the renderer's caches."""
    return Simulator(env, dom, seed=5, image_size=size)


def _cases():
    """(name, render function) for every pinned image."""
    out = []
    for env, domains in DOMAINS.items():
        for dom in domains:
            size = STREET_SIZE if dom.startswith("street") else SIZES[env]
            for i in INDICES:

                def one(env=env, dom=dom, size=size, i=i):
                    sim = _sim(env, dom, size)
                    return sim.render_full(sim.scene(i))

                out.append((f"{env}/{dom}/{i}", one))
    for dom in ("source", "street_eu"):

        def calibrated(dom=dom):
            sim = Simulator("drive", dom, seed=2, camera=REAL.scaled(320, 180))
            return sim.render_full(sim.scene(1))

        def near(dom=dom):
            # a car reaching behind the camera's near plane, and a pedestrian beside it
            sim = Simulator("drive", dom, seed=0, image_size=STREET_SIZE)
            objs = [
                ObjectSpec("car", (1.2, 1.65, 1.0), (1.5, 1.8, 4.5), 0.3, 1),
                ObjectSpec("pedestrian", (-2.0, 1.65, 6.0), (1.75, 0.6, 0.6), 0.0, 2),
            ]
            return sim.render_full(SceneDescription(camera=sim.camera, objects=objs, seed=9, env="drive"))

        out += [(f"drive/{dom}/calibrated", calibrated), (f"drive/{dom}/near_plane", near)]
    return out


PINNED = {
    "drive/source/0": "6ba183a2cfb2845fcbd4a3a3931a977b",
    "drive/source/1": "0b858999d7e25b51d4223b616da50e0d",
    "drive/source/3": "909487109a6d36febaa7a71a4dbd7be5",
    "drive/randomized/0": "bea939f4b59423a0ca944977ce715f84",
    "drive/randomized/1": "4cd25b0df1c1a07777f3e644c4e89e04",
    "drive/randomized/3": "cdd99b9c7ff8efac69445a08c832e755",
    "drive/target/0": "988096aa4908cda8ab52686bc308269c",
    "drive/target/1": "b395546d9f378d8796c95e6f6c4f601c",
    "drive/target/3": "cbdcea5e02c499a3ad830fa3ea6d8040",
    "drive/street/0": "1fc20bf59d6742e343322b80ad324190",
    "drive/street/1": "9ab1c6c95dce72a5a9407e4e25424e49",
    "drive/street/3": "620392a4adde51e85381f2bd47b558d7",
    "drive/street_randomized/0": "eb212c94e7ef1e13461b83bbb6dd7fbd",
    "drive/street_randomized/1": "93f0fba62e007086e9898389c4c776c3",
    "drive/street_randomized/3": "91d4cced9e54037b01e129d500bde031",
    "drive/street_eu/0": "201c6d8621ea04eb1ec5bac47c949420",
    "drive/street_eu/1": "87aa08856acd5dfa8d2db62e0770a452",
    "drive/street_eu/3": "849389ede79adffb433f9749fcba9ee4",
    "drive/street_eu_randomized/0": "b1c3fb87230ef230e3a5b7d53e4af722",
    "drive/street_eu_randomized/1": "43e40b3de1c343554c70f0cec8cb94c6",
    "drive/street_eu_randomized/3": "1951fa600fcd79f4e7b7d9fbdaf26104",
    "clevr/source/0": "20239df8d6793e4ab9b4871d7b5efaf3",
    "clevr/source/1": "523ce8b11d352945abdb08ddc33633eb",
    "clevr/source/3": "60b8265619688baa7e8b5eb2236e4b54",
    "clevr/target/0": "716f8259a37938656a51e9dcd3d2fc22",
    "clevr/target/1": "063464c2c81da719e42ae305a5cf9fdd",
    "clevr/target/3": "19c19601bd13aa3d9aa3d7ac6bdb9c86",
    "dining/source/0": "50c0fe96a5ab5dea7ab7cc278d629ab8",
    "dining/source/1": "1a3a19504627a9e5d8aa9121c77c5dfb",
    "dining/source/3": "d0651675dc3987eefb6110b2f313f0b4",
    "dining/target/0": "4656a14208e1edbc8712bab72df31437",
    "dining/target/1": "b69d111f1e832a4cbd06ca3d9866b183",
    "dining/target/3": "73a8274fc518e46412c36c64b8ab42de",
    "drive/source/calibrated": "fe6b8fc86fe59ef0d711b3891ca7ac2f",
    "drive/source/near_plane": "2ba7e9b7fab6400ad9c6e4220dac8cda",
    "drive/street_eu/calibrated": "552a3777cd4aea15507d7d2a65bc383a",
    "drive/street_eu/near_plane": "8ce409b3e2214032156dffd92619fd7a",
}

CASES = _cases()


@pytest.mark.parametrize("name,render", CASES, ids=[c[0] for c in CASES])
def test_rendering_is_pinned(name, render):
    assert _digest(render()) == PINNED[name], f"{name}: the rendered image or its labels changed"


if __name__ == "__main__":
    for name, render in CASES:
        print(f'    "{name}": "{_digest(render())}",')
