"""A linear residual layer: what a decoded image misses, coded in a basis fitted to such residuals.

Above about 1 bpp the default codec sits at its transform ceiling (33 dB on Kodak), yet its residual is
far from white: 96 of the 768 principal components of 16x16x3 residual blocks hold 53-65 % of its
energy (projects/residual_layer). So after a base file, the residual of the base's *decoded* 8-bit image is
coded as a transform coder would: projected on those components, quantized with a uniform step, and
entropy coded with compressai's rANS under a Laplace per (component, block class). A block's class is a
bin of the decoded base block's sum of absolute pixel differences, so the model sends nothing but the
step; the decoder has those pixels exactly only where the base decodes to the same pixels on every
machine (``--exact``): wiring the layer into files must take the class from the base's exactly parsed
latents instead, or decode the base exactly (projects/residual_layer/README.md). Closest published
relative: lossy plus residual coding (DLPR; Bai et al., TPAMI 2024), which codes the residual in the pixel
domain with a learned context model.

Nothing is trained by gradient: :meth:`ResidualLayer.fit` is a PCA and a table of mean absolute values.
Everything the decoder's parse depends on is stored and fingerprinted, not recomputed (the CDF tables,
the float32 boundaries between the tables' scales), and the table a symbol uses is found by one IEEE
division and comparisons, so every machine that has the same base pixels parses a stream alike. The
pixels the inverse transform adds can still differ by a level between machines (float64 BLAS sums).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from plic._compressai import padded_for_rans
from plic.errors import PlicError

BLOCK = 16
#: coefficients per block: 16 x 16 pixels x 3 colours
DIM = BLOCK * BLOCK * 3
#: the entropy coder's CDF precision (bits), as compressai's entropy models use
PRECISION = 16
#: probability left beyond each table's range: such values are escape-coded (compressai's bypass)
TAIL = 1e-6
#: metadata key that marks a residual layer's file (its value: the block size and class count, JSON)
METADATA_KEY = "plic_residual_layer"


def to_blocks(a: np.ndarray) -> np.ndarray:
    """(H, W, 3), H and W multiples of 16 -> (blocks, 768), blocks row-major, each row-major, colours last."""
    h, w = a.shape[0], a.shape[1]
    return a.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, 3).transpose(0, 2, 1, 3, 4).reshape(-1, DIM)


def from_blocks(b: np.ndarray, h: int, w: int) -> np.ndarray:
    """The inverse of :func:`to_blocks` for an (h, w, 3) image."""
    return b.reshape(h // BLOCK, w // BLOCK, BLOCK, BLOCK, 3).transpose(0, 2, 1, 3, 4).reshape(h, w, 3)


def padded(a: np.ndarray) -> np.ndarray:
    """``a`` (H, W, 3) extended by edge replication to multiples of 16."""
    h, w = a.shape[0], a.shape[1]
    return np.pad(a, ((0, -h % BLOCK), (0, -w % BLOCK), (0, 0)), mode="edge")


def residual_blocks(image: np.ndarray, base: np.ndarray) -> np.ndarray:
    """The blocks (N, 768) of ``image - base`` (both (H, W, 3) 8-bit values), padded to whole blocks: what
    :meth:`ResidualLayer.encode` codes, and what :meth:`ResidualLayer.fit` is fitted on."""
    return to_blocks(padded(np.asarray(image, dtype=np.float64) - np.asarray(base, dtype=np.float64)))


def activity(base: np.ndarray) -> np.ndarray:
    """Each block's sum of absolute differences between neighbouring pixels (down and right) of a decoded
    8-bit image (H, W, 3), padded to whole blocks: an integer, so the same on every machine."""
    q = padded(np.asarray(base, dtype=np.int64))
    g = np.zeros_like(q)
    g[:-1] += np.abs(np.diff(q, axis=0))
    g[:, :-1] += np.abs(np.diff(q, axis=1))
    return to_blocks(g).sum(1)


def _laplace_cdf(v: np.ndarray, scale: float) -> np.ndarray:
    return np.where(v < 0, 0.5 * np.exp(v / scale), 1 - 0.5 * np.exp(-v / scale))


def laplace_tables(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantized CDFs (padded rows), lengths and offsets of the unit-step discretized Laplace at each scale."""
    from compressai._CXX import pmf_to_quantized_cdf

    rows, offsets = [], []
    for s in scales:
        half = int(np.ceil(s * np.log(1 / (2 * TAIL)))) + 1
        n = np.arange(-half, half + 1, dtype=np.float64)
        pmf = _laplace_cdf(n + 0.5, s) - _laplace_cdf(n - 0.5, s)
        rows.append(pmf_to_quantized_cdf(np.append(pmf, max(1.0 - pmf.sum(), 0.0)).tolist(), PRECISION))
        offsets.append(-half)
    cdfs = np.zeros((len(rows), max(map(len, rows))), dtype=np.int32)
    for i, r in enumerate(rows):
        cdfs[i, :len(r)] = r
    return cdfs, np.array([len(r) for r in rows], dtype=np.int32), np.array(offsets, dtype=np.int32)


class ResidualLayer:
    """The basis (columns, by falling variance), the class edges, the Laplace scales per class and
    component (8-bit units), and the rANS tables with the boundaries between their scales (in steps):
    a coefficient whose scale over the step lies below ``boundaries[0]`` uses table 0, and so on."""

    def __init__(self, basis: np.ndarray, edges: np.ndarray, scales: np.ndarray, boundaries: np.ndarray,
                 cdfs: np.ndarray, cdf_lengths: np.ndarray, offsets: np.ndarray):
        self.basis = np.asarray(basis, dtype=np.float32)
        self.edges = np.asarray(edges, dtype=np.int64)
        self.scales = np.asarray(scales, dtype=np.float32)
        self.boundaries = np.asarray(boundaries, dtype=np.float32)
        self.cdfs = np.asarray(cdfs, dtype=np.int32)
        self.cdf_lengths = np.asarray(cdf_lengths, dtype=np.int32)
        self.offsets = np.asarray(offsets, dtype=np.int32)
        self._check()
        self._basis64 = self.basis.astype(np.float64)
        # the form compressai's rANS coder takes the tables in, built once
        self._rans_tables = (self.cdfs.tolist(), self.cdf_lengths.tolist(), self.offsets.tolist())
        self.fingerprint = self._fingerprint()

    def _check(self) -> None:
        """Refuse tables that would make compressai's unchecked rANS read outside them (a damaged file)."""
        tables = len(self.cdfs)
        ok = (self.basis.shape == (DIM, DIM) and self.edges.ndim == 1
              and self.scales.shape == (len(self.edges) + 1, DIM) and bool(np.all(np.diff(self.edges) > 0))
              and bool(np.all(self.scales > 0)) and self.cdfs.ndim == 2 and tables >= 1
              and self.cdf_lengths.shape == self.offsets.shape == (tables,)
              and self.boundaries.shape == (tables - 1,) and bool(np.all(np.diff(self.boundaries) > 0))
              and bool(np.all(self.boundaries > 0)) and bool(np.all(np.isfinite(self.basis))))
        if ok:
            ok = bool(np.all((self.cdf_lengths >= 3) & (self.cdf_lengths <= self.cdfs.shape[1])))
        if ok:
            rows = [self.cdfs[i, :n] for i, n in enumerate(self.cdf_lengths)]
            ok = all(r[0] == 0 and r[-1] == 1 << PRECISION and bool(np.all(np.diff(r) >= 0)) for r in rows)
        if not ok:
            raise PlicError("not a consistent residual layer (basis, classes or entropy tables)")

    @classmethod
    def fit(cls, residuals: np.ndarray, activities: np.ndarray, classes: int = 6,
            table_scales: Optional[np.ndarray] = None) -> "ResidualLayer":
        """Fit on residual blocks (N, 768; :func:`residual_blocks`) and the activities of their bases' blocks.

        ``classes``: at most that many (equal activity quantiles that coincide merge). The basis is rounded
        to float16, as it is stored; ``variances`` (not stored) are the residual's along each basis vector.
        """
        residuals = np.asarray(residuals, dtype=np.float64)
        if residuals.ndim != 2 or residuals.shape[1] != DIM or len(residuals) != len(activities):
            raise ValueError(f"need residual blocks of {DIM} values and one activity per block")
        variances, vectors = np.linalg.eigh(np.cov(residuals.T))
        basis = vectors[:, ::-1].astype(np.float16).astype(np.float32)
        edges = np.unique(np.quantile(activities, np.linspace(0, 1, classes + 1)[1:-1]).round().astype(np.int64))
        coeffs = residuals @ basis.astype(np.float64)
        which = np.searchsorted(edges, activities, side="right")
        scales = np.stack([np.abs(coeffs[which == k]).mean(0) if np.any(which == k) else np.abs(coeffs).mean(0)
                           for k in range(len(edges) + 1)])
        table_scales = np.exp(np.linspace(np.log(0.04), np.log(40.0), 64)) if table_scales is None else table_scales
        boundaries = np.sqrt(table_scales[:-1] * table_scales[1:])  # geometric midpoints
        layer = cls(basis, edges, np.maximum(scales, 1e-3), boundaries, *laplace_tables(table_scales))
        layer.variances = variances[::-1]
        return layer

    def _state(self) -> Dict[str, np.ndarray]:
        return {"basis": self.basis, "edges": self.edges, "scales": self.scales, "boundaries": self.boundaries,
                "cdfs": self.cdfs, "cdf_lengths": self.cdf_lengths, "offsets": self.offsets}

    def _fingerprint(self) -> bytes:
        import torch

        from plic.zoo import fingerprint

        # every tensor is float32 or an integer type, so the fingerprint (of float32 values) covers it exactly
        return fingerprint({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self._state().items()})

    def save(self, path: str | Path, metadata: Optional[Dict[str, str]] = None) -> bytes:
        """Write the layer (the basis in float16, which holds it exactly) atomically; returns its fingerprint."""
        from safetensors.numpy import save

        from plic.files import write_output
        from plic.zoo import FINGERPRINT_KEY

        half = self.basis.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), self.basis):
            raise PlicError("the basis is not float16-exact: fit it with ResidualLayer.fit, which rounds it")
        state = {k: np.ascontiguousarray(v) for k, v in dict(self._state(), basis=half).items()}
        meta = {METADATA_KEY: json.dumps({"block": BLOCK, "classes": len(self.edges) + 1}), **(metadata or {}),
                FINGERPRINT_KEY: self.fingerprint.hex()}
        write_output(Path(path), save(state, metadata=meta))
        return self.fingerprint

    @classmethod
    def load(cls, path: str | Path) -> "ResidualLayer":
        from safetensors.numpy import load_file

        from plic.zoo import read_metadata, stored_fingerprint

        meta = read_metadata(path)  # a missing or non-safetensors file fails here in one line
        if METADATA_KEY not in meta:
            raise PlicError(f"{path}: not a residual layer's file")
        recorded = stored_fingerprint(path, meta)
        if recorded is None:
            raise PlicError(f"{path}: a residual layer's file without its fingerprint")
        try:
            state = load_file(str(path))
            layer = cls(**{k: state[k] for k in ("basis", "edges", "scales", "boundaries", "cdfs", "cdf_lengths",
                                                 "offsets")})
        except PlicError as exc:
            raise PlicError(f"{path}: {exc}") from None
        except Exception as exc:  # safetensors' own errors are plain Exceptions
            raise PlicError(f"{path}: unreadable residual layer ({exc})") from None
        if recorded != layer.fingerprint:
            raise PlicError(f"{path}: the layer does not match the fingerprint in its metadata (damaged file?)")
        return layer

    def _indexes(self, base: np.ndarray, step: float) -> np.ndarray:
        """The table each coefficient is coded with: by its class's scale over the step, among the boundaries."""
        scale = self.scales.astype(np.float64)[np.searchsorted(self.edges, activity(base), side="right")]
        return np.searchsorted(self.boundaries.astype(np.float64), scale / np.float64(step)).astype(np.int32)

    def _stored_step(self, step: float) -> float:
        """``step`` as a file stores it (float32); refused outside 0.5..1024."""
        step = float(np.float32(step))
        if not (np.isfinite(step) and 0.5 <= step <= 1024):
            raise PlicError(f"residual step {step:g} is outside 0.5..1024 (8-bit units)")
        return step

    def encode(self, image: np.ndarray, base: np.ndarray, step: float) -> bytes:
        """The rANS stream of ``image - base`` (both (H, W, 3) 8-bit values) at quantization ``step``."""
        from compressai.ans import RansEncoder

        step = self._stored_step(step)
        if image.shape != base.shape or image.ndim != 3 or image.shape[2] != 3:
            raise PlicError("the residual layer codes 3-channel images over a base of the same size")
        symbols = np.rint(residual_blocks(image, base) @ self._basis64 / step).astype(np.int32)
        return RansEncoder().encode_with_indexes(symbols.ravel().tolist(), self._indexes(base, step).ravel().tolist(),
                                                 *self._rans_tables)

    def decode(self, data: bytes, base: np.ndarray, step: float) -> np.ndarray:
        """``base`` (H, W, 3) 8-bit values plus the decoded residual, rounded and clipped to 8 bits (uint8)."""
        from compressai.ans import RansDecoder

        step = self._stored_step(step)
        h, w = base.shape[0], base.shape[1]
        indexes = self._indexes(base, step)
        symbols = np.asarray(RansDecoder().decode_with_indexes(padded_for_rans(data, indexes.size),
                                                              indexes.ravel().tolist(), *self._rans_tables),
                             dtype=np.float64)
        residual = from_blocks(symbols.reshape(indexes.shape) * step @ self._basis64.T, *padded(base).shape[:2])
        return np.clip(np.rint(np.asarray(base, dtype=np.float64) + residual[:h, :w]), 0, 255).astype(np.uint8)
