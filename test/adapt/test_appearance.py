"""Image-level appearance alignment (low-frequency spectrum transfer): the target's global look is
carried over, the labelled image's content (and so its labels) is kept."""

import numpy as np
import pytest

from sim2sg_core.adapt.appearance import spectrum_transfer, stylise_batch
from sim2sg_core.sim import Simulator

SIZE = (320, 96)


@pytest.fixture(scope="module")
def pair():
    src = Simulator(env="drive", domain="source", seed=3, image_size=SIZE).sample(0).image
    tgt = Simulator(env="drive", domain="target", seed=4, image_size=SIZE).sample(1).image
    return src, tgt


def _grad(im):
    g = im.astype(np.float32).mean(2)
    return np.concatenate([np.diff(g, axis=0).ravel(), np.diff(g, axis=1).ravel()])


def test_beta_zero_is_identity(pair):
    src, tgt = pair
    assert spectrum_transfer(src, tgt, 0.0) is src


def test_takes_the_style_look_and_keeps_the_content(pair):
    src, tgt = pair
    out = spectrum_transfer(src, tgt, 0.05)
    assert out.dtype == np.uint8 and out.shape == src.shape
    # the DC term is swapped: the mean colour is the style's, not the source's
    m_out, m_src, m_tgt = (im.reshape(-1, 3).mean(0) for im in (out, src, tgt))
    assert np.abs(m_out - m_tgt).max() < 4.0 < np.abs(m_src - m_tgt).max()

    # the low band's amplitude is the style's (up to uint8 rounding/clipping)
    def low_amp(im):
        f = np.fft.fftshift(np.fft.fft2(im.astype(np.float32), axes=(0, 1)), axes=(0, 1))
        return np.abs(f[48 - 2 : 48 + 3, 160 - 2 : 160 + 3])

    assert np.abs(low_amp(out) - low_amp(tgt)).mean() < 0.1 * np.abs(low_amp(src) - low_amp(tgt)).mean()
    # edges (object outlines, i.e. what the labels describe) stay where they were
    assert np.corrcoef(_grad(out), _grad(src))[0, 1] > 0.8
    assert np.corrcoef(_grad(out), _grad(tgt))[0, 1] < 0.3


def test_style_of_another_size_is_resized(pair):
    src, tgt = pair
    big = np.ascontiguousarray(np.repeat(np.repeat(tgt, 2, axis=0), 2, axis=1))
    out = spectrum_transfer(src, big, 0.05)
    assert out.shape == src.shape
    assert np.abs(out.astype(int) - spectrum_transfer(src, tgt, 0.05).astype(int)).mean() < 3.0


def test_bad_input_is_a_clear_error(pair):
    src, tgt = pair
    with pytest.raises(ValueError, match="RGB uint8"):
        spectrum_transfer(src.astype(np.float32), tgt, 0.05)


def test_stylise_batch_applies_with_the_given_probability(pair):
    src, tgt = pair
    rng = np.random.default_rng(0)
    out = stylise_batch([src] * 200, [tgt], rng, 0.05, probability=0.5)
    changed = sum(not np.array_equal(o, src) for o in out)
    assert 70 < changed < 130
    assert all(np.array_equal(o, src) for o in stylise_batch([src] * 5, [tgt], rng, 0.05, probability=0.0))
