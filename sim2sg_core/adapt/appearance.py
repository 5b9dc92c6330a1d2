"""Image-level appearance alignment: low-frequency spectrum transfer (FDA, Yang & Soatto, CVPR 2020).

The global look of an image — colour cast, exposure, contrast, haze, the broad light fall-off —
lives in the low-frequency *amplitude* of its Fourier spectrum; object shapes and edges live in
the phase. Swapping a labelled synthetic image's low-frequency amplitude for that of a random
unlabelled target image gives it the target's look while every box and label stays exact. This is
the image-level half of appearance alignment; the GRL + discriminator on Z is the feature-level
half (see :mod:`sim2sg_core.adapt.sim2sg`). Nothing is learnt, and no target label is involved.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def _low_band(h: int, w: int, beta: float) -> tuple[slice, slice]:
    """Rows/cols of the centred (fftshift-ed) spectrum inside the low-frequency square."""
    b = max(1, int(np.floor(min(h, w) * beta)))
    ch, cw = h // 2, w // 2
    return slice(max(ch - b, 0), ch + b + 1), slice(max(cw - b, 0), cw + b + 1)


def spectrum_transfer(image: np.ndarray, style: np.ndarray, beta: float = 0.05) -> np.ndarray:
    """``image`` (RGB uint8 H×W×3) with the low-frequency amplitude of ``style`` (any size).

    ``beta`` is the half-width of the swapped square as a fraction of min(H, W); 0 returns the
    image unchanged. The phase of ``image`` is kept, so its content (and labels) are too.
    """
    if beta <= 0:
        return image
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"spectrum_transfer expects RGB uint8 H×W×3, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    if style.shape[:2] != (h, w):
        style = cv2.resize(style, (w, h), interpolation=cv2.INTER_AREA)
    f_img = np.fft.fftshift(np.fft.fft2(image.astype(np.float32), axes=(0, 1)), axes=(0, 1))
    f_sty = np.fft.fftshift(np.fft.fft2(style.astype(np.float32), axes=(0, 1)), axes=(0, 1))
    amp, phase = np.abs(f_img), np.angle(f_img)
    rows, cols = _low_band(h, w, beta)
    amp[rows, cols] = np.abs(f_sty[rows, cols])
    out = np.fft.ifft2(np.fft.ifftshift(amp * np.exp(1j * phase), axes=(0, 1)), axes=(0, 1)).real
    return np.clip(out, 0, 255).astype(np.uint8)


def stylise_batch(
    images: Sequence[np.ndarray],
    styles: Sequence[np.ndarray],
    rng: np.random.Generator,
    beta: float,
    probability: float = 1.0,
) -> list[np.ndarray]:
    """Each image, with probability ``probability``, in the look of a random one of ``styles``."""
    out = []
    for im in images:
        if beta > 0 and styles and rng.random() < probability:
            im = spectrum_transfer(im, styles[int(rng.integers(0, len(styles)))], beta)
        out.append(im)
    return out
