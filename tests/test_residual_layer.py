from __future__ import annotations

import numpy as np
import pytest

from plic.errors import PlicError
from plic.residual_layer import ResidualLayer, activity, from_blocks, padded, residual_blocks, to_blocks


def textured_image(rng, h: int, w: int) -> np.ndarray:
    """An 8-bit RGB image: noise constant over 4x4 squares, and a vertical edge."""
    noise = rng.normal(0, 1, (h // 4 + 2, w // 4 + 2, 3))
    up = np.kron(noise, np.ones((4, 4, 1)))[:h, :w]
    return np.clip(128 + 40 * up + 60 * (np.arange(w)[None, :, None] > w // 2), 0, 255).round()


def blurred(image: np.ndarray) -> np.ndarray:
    """A stand-in for a decoded base: a 3x3 box blur, so the residual is structured (edges, texture)."""
    p = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    out = sum(p[i:i + image.shape[0], j:j + image.shape[1]] for i in range(3) for j in range(3)) / 9
    return np.rint(out)


@pytest.fixture(scope="module")
def layer() -> ResidualLayer:
    rng = np.random.default_rng(0)
    res, act = [], []
    for _ in range(6):
        x = textured_image(rng, 96, 128)
        base = blurred(x)
        res.append(residual_blocks(x, base))
        act.append(activity(base))
    return ResidualLayer.fit(np.concatenate(res), np.concatenate(act))


def test_blocks_round_trip_and_padding_covers_every_pixel():
    a = np.arange(37 * 53 * 3, dtype=np.float64).reshape(37, 53, 3)
    p = padded(a)
    assert p.shape == (48, 64, 3) and np.array_equal(p[:37, :53], a)
    assert np.array_equal(from_blocks(to_blocks(p), 48, 64), p)
    assert to_blocks(p).shape == (12, 768)
    assert np.array_equal(to_blocks(p)[1], p[0:16, 16:32].ravel())  # blocks row-major, each row-major
    assert np.array_equal(p[47, 60], a[36, 52])  # the padding repeats the last row and column


def test_activity_sums_absolute_differences_per_block():
    base = np.zeros((16, 32, 3), dtype=np.int64)
    base[:, 20:] = 10  # one vertical edge in the second block, on all three colours
    assert list(activity(base)) == [0, 16 * 3 * 10]


def test_the_layer_decodes_what_it_coded_and_a_finer_step_costs_more_for_less_error(layer):
    rng = np.random.default_rng(1)
    x = textured_image(rng, 37, 53)  # not whole blocks: the edge blocks are coded too
    base = blurred(x)
    results = []
    for step in (4.0, 12.0):
        data = layer.encode(x, base, step)
        out = layer.decode(data, base, step)
        assert out.dtype == np.uint8 and out.shape == x.shape
        # what the encoder quantized, reconstructed independently of decode()
        symbols = np.rint(to_blocks(padded(x - base)) @ layer.basis.astype(np.float64) / step)
        expect = np.clip(np.rint(base + from_blocks(symbols * step @ layer.basis.T.astype(np.float64), 48, 64)[:37, :53]),
                         0, 255)
        assert np.array_equal(out, expect)
        results.append((len(data), np.mean((out - x) ** 2)))
    (fine_bytes, fine_err), (coarse_bytes, coarse_err) = results
    assert fine_bytes > coarse_bytes and fine_err < coarse_err < np.mean((base - x) ** 2)


def test_a_saved_layer_loads_with_its_fingerprint_and_a_damaged_one_is_refused(layer, tmp_path):
    path = tmp_path / "layer.safetensors"
    assert layer.save(path) == layer.fingerprint
    loaded = ResidualLayer.load(path)
    assert loaded.fingerprint == layer.fingerprint
    rng = np.random.default_rng(2)
    x = textured_image(rng, 32, 48)
    base = blurred(x)
    data = layer.encode(x, base, 6.0)
    assert np.array_equal(loaded.decode(data, base, 6.0), layer.decode(data, base, 6.0))
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0x40  # inside the last tensor's data
    path.write_bytes(bytes(raw))
    with pytest.raises(PlicError, match="fingerprint"):
        ResidualLayer.load(path)


def test_an_unrounded_basis_is_not_saved(layer, tmp_path):
    raw = ResidualLayer(layer.basis + np.float32(1e-5), layer.edges, layer.scales, layer.boundaries, layer.cdfs,
                        layer.cdf_lengths, layer.offsets)
    with pytest.raises(PlicError, match="float16"):
        raw.save(tmp_path / "layer.safetensors")
    assert not list(tmp_path.iterdir())


def test_files_that_are_not_a_whole_residual_layer_are_refused_in_one_line(layer, tmp_path):
    from safetensors.numpy import save_file

    good = tmp_path / "layer.safetensors"
    layer.save(good)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-1000])
    other = tmp_path / "other.safetensors"
    save_file({"x": np.zeros(3, dtype=np.float32)}, str(other))
    for path, said in ((truncated, "unreadable"), (other, "not a residual layer")):
        with pytest.raises(PlicError, match=said) as exc:
            ResidualLayer.load(path)
        assert "\n" not in str(exc.value)
    lengths = layer.cdf_lengths.copy()
    lengths[0] = layer.cdfs.shape[1] + 5  # would send rANS past the table
    with pytest.raises(PlicError, match="consistent"):
        ResidualLayer(layer.basis, layer.edges, layer.scales, layer.boundaries, layer.cdfs, lengths, layer.offsets)


def test_values_beyond_the_tables_and_the_extreme_tables_round_trip(layer):
    # a flat base (class 0) and a wild residual: step 0.5 uses the first and the last table (64 scales) and
    # codes coefficients far outside their ranges (escape-coded); step 1024 leaves every scale in table 0
    rng = np.random.default_rng(4)
    base = np.full((32, 32, 3), 128.0)
    x = np.clip(base + rng.normal(0, 90, base.shape), 0, 255).round()
    x[:16, :16] = 255
    for step in (0.5, 1024.0):
        data = layer.encode(x, base, step)
        symbols = np.rint(to_blocks(padded(x - base)) @ layer.basis.astype(np.float64) / step)
        expect = np.clip(np.rint(base + from_blocks(symbols * step @ layer.basis.T.astype(np.float64), 32, 32)),
                         0, 255)
        assert np.array_equal(layer.decode(data, base, step), expect)
    assert np.abs(np.rint(to_blocks(x - base) @ layer.basis.astype(np.float64) / 0.5)).max() > 100


def test_a_damaged_stream_decodes_to_some_image_without_crashing(layer):
    rng = np.random.default_rng(3)
    base = blurred(textured_image(rng, 32, 32))
    for junk in (b"", bytes(rng.integers(0, 256, 40, dtype=np.uint8)), b"\xff" * 7):
        out = layer.decode(junk, base, 8.0)
        assert out.shape == base.shape and out.dtype == np.uint8


@pytest.mark.parametrize("step", [0.0, -3.0, float("nan"), 5000.0])
def test_steps_outside_the_range_are_refused(layer, step):
    base = np.zeros((16, 16, 3))
    with pytest.raises(PlicError, match="residual step"):
        layer.encode(base, base, step)
    with pytest.raises(PlicError, match="residual step"):
        layer.decode(b"", base, step)
