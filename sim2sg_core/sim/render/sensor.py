"""The camera sensor model: texture, vignette, colour cast, exposure, gamma, hue/saturation, blur, noise
and JPEG. Texture and noise come from fixed banks (twice the image size) cropped at random offsets,
so the stage stays cheap and deterministic."""

from __future__ import annotations

import math
from typing import Optional

import cv2
import numpy as np

from sim2sg_core.sim.domains import AppearanceConfig
from sim2sg_core.sim.render.look import Look, draw_uniform


def hue_saturation(img: np.ndarray, hue_deg: float, sat: float) -> np.ndarray:
    """Rotate hue about the grey axis by ``hue_deg`` and scale saturation by ``sat`` (one 3×3 colour
    matrix, so it costs one pass)."""
    g = np.full((3, 3), 1.0 / 3.0)
    a = math.radians(hue_deg)
    k = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]]) / math.sqrt(3.0)  # cross-product matrix of the grey axis
    rot = np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * (k @ k)
    m = g + sat * (rot - g)
    return cv2.transform(img, m.astype(np.float32))  # saturates to uint8


class Sensor:
    """Applies the sensor stage; holds the noise banks and vignettes per image size."""

    def __init__(self) -> None:
        self._banks: dict = {}

    def apply(
        self, img: np.ndarray, look: Look, app: AppearanceConfig, rng, texture_map: Optional[np.ndarray] = None
    ) -> np.ndarray:
        """The sensor stage on a drawn image; ``texture_map`` (street looks) is a per-pixel texture
        strength added to the look's ``texture``."""
        H, W = img.shape[:2]
        exposure_done = False
        if texture_map is not None:  # street looks: per-pixel strength, OpenCV arithmetic (saturating, one pass)
            crop = self.noise_bank("tex", W, H, app.texture_scale)
            oy, ox = int(rng.integers(0, H)), int(rng.integers(0, W))
            # (OpenCV takes a scalar as the second operand; its type stubs list arrays only)
            strength = cv2.add(texture_map, float(look.texture)) if look.texture > 0 else texture_map  # type: ignore[call-overload]
            gain = cv2.add(cv2.multiply(strength, crop[oy : oy + H, ox : ox + W]), 1.0)  # type: ignore[call-overload]
            if app.vignette > 0:
                gain = cv2.multiply(gain, self.vignette(W, H, app.vignette))
            if look.gamma == 1 and (look.cast == 1).all() and look.exposure != 1:
                # a plain exposure gain, folded in here (a scalar operand: see above)
                gain = cv2.multiply(gain, float(look.exposure))  # type: ignore[call-overload]
                exposure_done = True
            g8 = cv2.convertScaleAbs(gain, alpha=128.0)  # gain in 1/128 steps (max ~2): 8-bit multiply
            img = cv2.multiply(img, cv2.merge([g8, g8, g8]), scale=1.0 / 128.0)
        elif look.texture > 0 or app.vignette > 0:
            gain = np.ones((H, W), np.float32)
            if look.texture > 0:
                bank = self.noise_bank("tex", W, H, app.texture_scale)
                oy, ox = int(rng.integers(0, H)), int(rng.integers(0, W))
                gain += np.float32(look.texture) * bank[oy : oy + H, ox : ox + W]
            if app.vignette > 0:
                gain *= self.vignette(W, H, app.vignette)
            img = cv2.multiply(img.astype(np.float32), cv2.merge([gain, gain, gain]))
            img = np.clip(img, 0, 255).astype(np.uint8)
        if not exposure_done and ((look.cast != 1).any() or look.exposure != 1 or look.gamma != 1):
            x = np.arange(256, dtype=np.float64)[:, None] / 255.0
            y = np.clip(x * look.exposure * look.cast[None, :], 0, 1) ** (1.0 / look.gamma)
            lut = np.clip(np.round(y * 255), 0, 255).astype(np.uint8).reshape(256, 1, 3)
            img = cv2.LUT(img, lut)
        if app.hue_shift != (0.0, 0.0) or app.saturation != (1.0, 1.0):
            img = hue_saturation(img, draw_uniform(rng, app.hue_shift), draw_uniform(rng, app.saturation))
        if look.blur > 0.25:
            img = cv2.GaussianBlur(img, (0, 0), look.blur)
        if look.noise > 0:
            bank = self.noise_bank("noise", W, H)
            oy, ox = int(rng.integers(0, H)), int(rng.integers(0, W))
            if texture_map is not None:  # street looks: one saturating pass
                img = cv2.addWeighted(img, 1.0, bank[oy : oy + H, ox : ox + W], look.noise, 0.0, dtype=cv2.CV_8U)
            else:
                noisy = cv2.scaleAdd(bank[oy : oy + H, ox : ox + W], look.noise, img.astype(np.float32))
                img = np.clip(noisy, 0, 255).astype(np.uint8)
        if look.jpeg is not None:
            ok, buf = cv2.imencode(
                ".jpg",
                cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, int(np.clip(look.jpeg, 1, 100))],
            )
            decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            if not ok or decoded is None:
                raise RuntimeError("the sensor's JPEG round trip failed (OpenCV imencode/imdecode)")
            img = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray(img)

    def vignette(self, W: int, H: int, strength: float) -> np.ndarray:
        """Radial gain falling off towards the corners, cached per size and strength."""
        key = ("vig", W, H, strength)
        v = self._banks.get(key)
        if v is None:
            yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
            r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
            v = (1.0 - strength * r2 / 2.0).astype(np.float32)
            self._banks[key] = v
        return v

    def noise_bank(self, kind: str, W: int, H: int, scale: float = 6.0) -> np.ndarray:
        """A fixed ``"tex"`` (blotchy, unit std) or ``"noise"`` (per-channel white) field of twice the
        image size; images crop it at random offsets instead of drawing their own noise."""
        key = (kind, W, H, scale)
        bank = self._banks.get(key)
        if bank is None:
            rng = np.random.default_rng({"tex": 11, "noise": 13}[kind])  # fixed banks: deterministic output
            if kind == "tex":
                coarse = rng.standard_normal((2 * H, 2 * W)).astype(np.float32)
                blob = cv2.GaussianBlur(coarse, (0, 0), scale)
                fine = cv2.GaussianBlur(rng.standard_normal((2 * H, 2 * W)).astype(np.float32), (0, 0), 0.8)
                t = blob / (blob.std() + 1e-6) + 0.5 * fine / (fine.std() + 1e-6)
                bank = (t / t.std()).astype(np.float32)
            else:
                bank = rng.standard_normal((2 * H, 2 * W, 3)).astype(np.float32)
            self._banks[key] = bank
        return bank
