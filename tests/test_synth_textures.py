"""Tests of the synthetic engine's texture bank and camera effects."""

from __future__ import annotations

import numpy as np
import pytest

from sharpdepth.synth import camera_effects as ce
from sharpdepth.synth.textures import TEXTURE_NAMES, TextureBank, get_texture_bank

EXPECTED_NAMES = (
    "noise",
    "stripes",
    "bricks",
    "wood",
    "checker",
    "tiles",
    "plaster",
    "concrete",
    "asphalt",
    "fabric",
    "bark",
    "leaves",
    "window",
    "facade",
    "paper",
    "marble",
    "plain",
    "photo_brick",
    "photo_grass",
    "photo_gravel",
    "photo_coffee",
    "photo_chelsea",
    "photo_astronaut",
    "photo_rocket",
)


@pytest.fixture(scope="module")
def bank() -> TextureBank:
    """The process-wide texture bank."""
    return get_texture_bank()


def _image(seed: int = 0, shape: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A linear float32 test image with smooth shading and a sharp edge."""
    rng = np.random.default_rng(seed)
    h, w = shape
    img = np.empty((h, w, 3), dtype=np.float32)
    img[:] = np.linspace(0.05, 0.9, w, dtype=np.float32)[None, :, None]
    img[: h // 2, : w // 3] = (0.8, 0.2, 0.1)
    img += rng.uniform(-0.02, 0.02, img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0)


# --------------------------------------------------------------------------- textures


def test_names_are_the_agreed_ones(bank: TextureBank) -> None:
    assert set(TEXTURE_NAMES) == set(EXPECTED_NAMES)
    assert len(TEXTURE_NAMES) == len(EXPECTED_NAMES)
    assert bank.names == TEXTURE_NAMES
    assert len(bank) == len(TEXTURE_NAMES)
    for i, name in enumerate(TEXTURE_NAMES):
        assert bank.index(name) == i
    with pytest.raises(KeyError):
        bank.index("no_such_texture")


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_texture_format(bank: TextureBank, name: str) -> None:
    tex = bank.texture(name)
    assert tex.dtype == np.float32
    assert tex.shape == (256, 256, 3)
    assert np.isfinite(tex).all()
    assert tex.min() >= 0.0 and tex.max() <= 1.0
    if name == "plain":
        assert np.all(tex == 1.0)
    else:
        assert float(tex.std()) > 0.01, f"{name} is (nearly) constant"


def test_procedural_textures_have_sharp_edges(bank: TextureBank) -> None:
    """Texture edges without depth edges: strong neighbour jumps exist."""
    for name in ("stripes", "bricks", "checker", "tiles", "window", "facade", "paper", "leaves"):
        tex = bank.texture(name)
        jump = np.abs(np.diff(tex.mean(axis=2), axis=1)).max()
        assert jump > 0.2, name


def test_bank_is_deterministic_across_builds() -> None:
    a = TextureBank()
    b = TextureBank()
    np.testing.assert_array_equal(a.textures, b.textures)


def test_textures_are_read_only(bank: TextureBank) -> None:
    with pytest.raises(ValueError):
        bank.textures[0, 0, 0, 0] = 0.5


def test_sample_hits_texel_centres(bank: TextureBank) -> None:
    """``u`` runs along columns, ``v`` upwards: texel (i, j) is at ``u = (j + .5) / S``,
    ``v = 1 - (i + .5) / S``."""
    rng = np.random.default_rng(0)
    size = bank.size
    rows = rng.integers(0, size, 500)
    cols = rng.integers(0, size, 500)
    u = (cols + 0.5) / size
    v = 1.0 - (rows + 0.5) / size
    for name in ("window", "photo_astronaut"):
        got = bank.sample(name, u, v)
        np.testing.assert_allclose(got, bank.texture(name)[rows, cols], atol=1e-6)


def test_sample_wraps(bank: TextureBank) -> None:
    rng = np.random.default_rng(1)
    u = rng.uniform(-3.0, 3.0, 2000)
    v = rng.uniform(-3.0, 3.0, 2000)
    for name in ("bricks", "photo_coffee", "leaves"):
        base = bank.sample(name, u, v)
        assert base.shape == (2000, 3) and base.dtype == np.float32
        np.testing.assert_allclose(bank.sample(name, u + 1.0, v), base, atol=1e-5)
        np.testing.assert_allclose(bank.sample(name, u, v - 2.0), base, atol=1e-5)
        np.testing.assert_allclose(bank.sample(name, u + 17.0, v + 5.0), base, atol=1e-4)


def test_sample_is_bilinear(bank: TextureBank) -> None:
    """Halfway between two texel centres gives their mean."""
    size = bank.size
    tex = bank.texture("checker")
    u = np.array([(3 + 1.0) / size])  # between columns 3 and 4 (centres 3.5, 4.5)
    v = np.array([1.0 - 10.5 / size])  # row 10 centre
    expected = 0.5 * (tex[10, 3] + tex[10, 4])
    np.testing.assert_allclose(bank.sample("checker", u, v)[0], expected, atol=1e-6)


def test_sample_keeps_input_shape(bank: TextureBank) -> None:
    u = np.zeros((4, 5))
    assert bank.sample(0, u, u).shape == (4, 5, 3)
    assert bank.sample_many(np.zeros((4, 5), dtype=np.int64), u, u).shape == (4, 5, 3)
    assert bank.sample("plain", np.zeros(0), np.zeros(0)).shape == (0, 3)


def test_sample_dtypes_and_out(bank: TextureBank) -> None:
    rng = np.random.default_rng(4)
    u = rng.uniform(-3.0, 3.0, 300)
    v = rng.uniform(-3.0, 3.0, 300)
    ref = bank.sample("wood", u, v)
    got32 = bank.sample("wood", u.astype(np.float32), v.astype(np.float32))
    np.testing.assert_allclose(got32, ref, atol=1e-3)
    ints = bank.sample("wood", np.arange(5), -np.arange(5))
    np.testing.assert_allclose(ints, bank.sample("wood", np.zeros(5), np.zeros(5)), atol=1e-6)
    out = np.empty((300, 3), dtype=np.float32)
    ids = np.full(300, bank.index("wood"))
    assert bank.sample_many(ids, u, v, out=out) is not None
    np.testing.assert_array_equal(out, ref)
    with pytest.raises(ValueError):
        bank.sample("wood", u, v, out=np.empty((300, 4), dtype=np.float32))


def test_sample_many_matches_sample(bank: TextureBank) -> None:
    rng = np.random.default_rng(2)
    n = 40_000  # more than one internal chunk
    ids = rng.integers(0, len(bank), n)
    u = rng.uniform(-10.0, 10.0, n)
    v = rng.uniform(-10.0, 10.0, n)
    many = bank.sample_many(ids, u, v)
    assert many.shape == (n, 3) and many.dtype == np.float32
    for t, name in enumerate(bank.names):
        sel = ids == t
        np.testing.assert_allclose(many[sel], bank.sample(name, u[sel], v[sel]), atol=1e-7)
    with pytest.raises(IndexError):
        bank.sample_many(np.array([len(bank)]), np.zeros(1), np.zeros(1))


def test_sample_lod(bank: TextureBank) -> None:
    rng = np.random.default_rng(3)
    n = 1000
    ids = rng.integers(0, len(bank), n)
    u = rng.uniform(-2.0, 2.0, n)
    v = rng.uniform(-2.0, 2.0, n)
    np.testing.assert_allclose(bank.sample_many(ids, u, v, 0.0), bank.sample_many(ids, u, v))
    coarsest = bank.sample_many(ids, u, v, lod=100.0)  # clipped to the 1x1 level
    np.testing.assert_allclose(coarsest, bank.mean_colors[ids], atol=1e-5)
    mid = bank.sample("bricks", u, v, lod=np.full(n, 2.5, dtype=np.float32))
    lo = bank.sample("bricks", u, v, lod=2.0)
    hi = bank.sample("bricks", u, v, lod=3.0)
    np.testing.assert_allclose(mid, 0.5 * (lo + hi), atol=1e-5)
    assert float(bank.lod(1.0 / bank.size)) == 0.0
    assert float(bank.lod(4.0 / bank.size)) == pytest.approx(2.0)


# ---------------------------------------------------------------------- camera effects


def test_camera_effects_output_format() -> None:
    img = _image()
    out = ce.apply_camera_effects(img, np.random.default_rng(0))
    assert out.dtype == np.uint8
    assert out.shape == img.shape


def test_camera_effects_deterministic_per_seed() -> None:
    img = _image()
    for strength in (0.5, 1.0, 2.0):
        a = ce.apply_camera_effects(img, np.random.default_rng(5), strength)
        b = ce.apply_camera_effects(img, np.random.default_rng(5), strength)
        np.testing.assert_array_equal(a, b)
    c = ce.apply_camera_effects(img, np.random.default_rng(6))
    assert not np.array_equal(ce.apply_camera_effects(img, np.random.default_rng(5)), c)


def test_camera_effects_strength_zero_is_plain_tone_mapping() -> None:
    img = _image()
    a = ce.apply_camera_effects(img, np.random.default_rng(1), strength=0.0)
    b = ce.apply_camera_effects(img, np.random.default_rng(2), strength=0.0)
    np.testing.assert_array_equal(a, b)
    exact = ce.quantize(ce.linear_to_srgb(img))
    assert np.abs(a.astype(int) - exact.astype(int)).max() <= 1


def test_camera_effects_do_not_modify_input() -> None:
    img = _image()
    before = img.copy()
    ce.apply_camera_effects(img, np.random.default_rng(0), 2.0)
    np.testing.assert_array_equal(img, before)


def test_pipeline_matches_composed_effects() -> None:
    """The buffer-reusing pipeline equals the standalone functions applied in order."""
    img = _image(shape=(33, 47))
    params = ce.CameraParams(
        exposure=1.2,
        white_balance=(1.05, 1.0, 0.9),
        vignette=0.3,
        vignette_center=(0.05, -0.02),
        blur_sigma=0.7,
        full_well=500.0,
        read_noise=0.01,
        noise_scale=1.0,
        gamma=1.05,
        contrast=0.1,
        jpeg_quality=None,
    )
    got = ce.apply_camera_params(img, params, np.random.default_rng(9))
    rng = np.random.default_rng(9)
    x = ce.expose(img, params.exposure, params.white_balance)
    x = ce.vignette(x, params.vignette, params.vignette_center)
    x = ce.gaussian_blur(x, params.blur_sigma)
    x = ce.add_sensor_noise(x, rng, params.full_well, params.read_noise, params.noise_scale)
    expected = ce.tone_map_quantize(x, params.gamma, params.contrast)
    np.testing.assert_array_equal(got, expected)
    exact = ce.quantize(ce.tone_map(x, params.gamma, params.contrast))
    assert np.abs(expected.astype(int) - exact.astype(int)).max() <= 1


def test_gaussian_blur_properties() -> None:
    flat = np.full((20, 30, 3), 0.4, dtype=np.float32)
    np.testing.assert_allclose(ce.gaussian_blur(flat, 0.8), flat, atol=1e-6)
    img = _image()
    out = ce.gaussian_blur(img, 0.8)
    assert out.shape == img.shape
    assert np.abs(np.diff(out, axis=1)).max() < np.abs(np.diff(img, axis=1)).max()
    np.testing.assert_array_equal(ce.gaussian_blur(img, 0.0), img)
    k = ce.gaussian_kernel(0.8)
    assert k.sum() == pytest.approx(1.0) and np.allclose(k, k[::-1])


def test_sensor_noise_statistics() -> None:
    img = np.full((200, 200, 3), 0.25, dtype=np.float32)
    out = ce.add_sensor_noise(img, np.random.default_rng(0), full_well=1000.0, read_noise=0.01)
    expected_std = np.sqrt(0.25 / 1000.0 + 0.01**2)
    assert float(out.mean()) == pytest.approx(0.25, abs=1e-3)
    assert float(out.std()) == pytest.approx(expected_std, rel=0.05)
    np.testing.assert_array_equal(
        ce.add_sensor_noise(img, np.random.default_rng(0), 1e3, 0.01, 0.0), img
    )


def test_vignette_darkens_corners() -> None:
    img = np.ones((40, 60, 3), dtype=np.float32)
    out = ce.vignette(img, 0.3)
    assert out[20, 30].mean() > out[0, 0].mean()
    assert float(out.max()) <= 1.0 + 1e-6


def test_jpeg_roundtrip_shape() -> None:
    img = ce.quantize(ce.linear_to_srgb(_image()))
    out = ce.jpeg_roundtrip(img, 80)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img.astype(int)).mean() < 10


def test_srgb_roundtrip() -> None:
    x = np.linspace(0.0, 1.0, 1001, dtype=np.float32)
    np.testing.assert_allclose(ce.srgb_to_linear(ce.linear_to_srgb(x)), x, atol=1e-5)
