"""A linear residual layer: what a decoded image misses, coded in a basis fitted to such residuals.

Above about 1 bpp the default codec sits at its transform ceiling (33 dB on Kodak), yet its residual is
far from white: in the principal components of 16x16x3 residual blocks most of its energy sits in a few
(projects/residual_layer). So after a base file, the residual of the base's *decoded* 8-bit image is
coded as a transform coder would: projected on those components, quantized with a uniform step, and
entropy coded with compressai's rANS under a Laplace per (component, block class). A block's class is a
bin of the decoded base block's integer gradient energy, which the decoder has exactly, so the model
sends nothing but the step. Closest published relative: lossy plus residual coding (DLPR; Bai et al.,
TPAMI 2024), which codes the residual in the pixel domain with a learned context model.

Nothing is trained by gradient: :meth:`ResidualLayer.fit` is a PCA and a table of mean absolute values.
Everything the decoder's parse depends on is stored, not recomputed (CDF tables, the boundaries between
the tables' scales), and the table a symbol uses is found by one IEEE division and comparisons, so every
machine parses a stream alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from plic.errors import PlicError

BLOCK = 16
#: coefficients per block: 16 x 16 pixels x 3 colours
DIM = BLOCK * BLOCK * 3
#: the entropy coder's CDF precision (bits), as compressai's entropy models use
PRECISION = 16
#: probability left beyond each table's range: such values are escape-coded (compressai's bypass)
TAIL = 1e-6
#: metadata key naming a residual layer's file
KIND = "plic_residual_layer"


def to_blocks(a: np.ndarray) -> np.ndarray:
    """(H, W, 3), H and W multiples of 16 -> (blocks, 768), blocks row-major, each row-major, colours last."""
    h, w = a.shape[0], a.shape[1]
    return a.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, 3).transpose(0, 2, 1, 3, 4).reshape(-1, DIM)


def from_blocks(b: np.ndarray, h: int, w: int) -> np.ndarray:
    return b.reshape(h // BLOCK, w // BLOCK, BLOCK, BLOCK, 3).transpose(0, 2, 1, 3, 4).reshape(h, w, 3)


def padded(a: np.ndarray) -> np.ndarray:
    """``a`` (H, W, 3) extended by edge replication to multiples of 16."""
    h, w = a.shape[0], a.shape[1]
    return np.pad(a, ((0, -h % BLOCK), (0, -w % BLOCK), (0, 0)), mode="edge")


def activity(base: np.ndarray) -> np.ndarray:
    """Integer gradient energy of each block of a decoded 8-bit image (H, W, 3), padded to whole blocks."""
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
    """The basis (columns, by falling variance), the class boundaries, the Laplace scales per class and
    component (8-bit units), and the rANS tables at ``table_scales`` (in quantization steps)."""

    def __init__(self, basis: np.ndarray, edges: np.ndarray, scales: np.ndarray, table_scales: np.ndarray,
                 cdfs: np.ndarray, cdf_lengths: np.ndarray, offsets: np.ndarray):
        self.basis = np.asarray(basis, dtype=np.float32)
        self.edges = np.asarray(edges, dtype=np.int64)
        self.scales = np.asarray(scales, dtype=np.float32)
        self.table_scales = np.asarray(table_scales, dtype=np.float64)
        self.cdfs = np.asarray(cdfs, dtype=np.int32)
        self.cdf_lengths = np.asarray(cdf_lengths, dtype=np.int32)
        self.offsets = np.asarray(offsets, dtype=np.int32)
        if self.basis.shape != (DIM, DIM) or self.scales.shape != (len(self.edges) + 1, DIM):
            raise PlicError(f"a residual layer needs a {DIM}x{DIM} basis and one scale row per class")
        if not len(self.table_scales) == len(self.cdfs) == len(self.cdf_lengths) == len(self.offsets):
            raise PlicError("a residual layer's tables disagree in length")
        # where one table's scale range ends and the next one's starts (geometric midpoints)
        self.boundaries = np.sqrt(self.table_scales[:-1] * self.table_scales[1:])
        self._basis64 = self.basis.astype(np.float64)
        self.fingerprint = self._fingerprint()

    @classmethod
    def fit(cls, residuals: np.ndarray, activities: np.ndarray, classes: int = 6,
            table_scales: Optional[np.ndarray] = None) -> "ResidualLayer":
        """Fit on residual blocks (N, 768; 8-bit units) and the activities of their decoded base blocks."""
        residuals = np.asarray(residuals, dtype=np.float64)
        if residuals.ndim != 2 or residuals.shape[1] != DIM or len(residuals) != len(activities):
            raise ValueError(f"need residual blocks of {DIM} values and one activity per block")
        _, vectors = np.linalg.eigh(np.cov(residuals.T))
        basis = vectors[:, ::-1].astype(np.float32)
        edges = np.unique(np.quantile(activities, np.linspace(0, 1, classes + 1)[1:-1]).round().astype(np.int64))
        coeffs = residuals @ basis.astype(np.float64)
        which = np.searchsorted(edges, activities, side="right")
        scales = np.stack([np.abs(coeffs[which == k]).mean(0) if np.any(which == k) else np.abs(coeffs).mean(0)
                           for k in range(len(edges) + 1)])
        table_scales = np.exp(np.linspace(np.log(0.04), np.log(40.0), 64)) if table_scales is None else table_scales
        return cls(basis, edges, np.maximum(scales, 1e-3), table_scales, *laplace_tables(table_scales))

    def _state(self) -> Dict[str, np.ndarray]:
        return {"basis": self.basis, "edges": self.edges, "scales": self.scales, "table_scales": self.table_scales,
                "cdfs": self.cdfs, "cdf_lengths": self.cdf_lengths, "offsets": self.offsets}

    def _fingerprint(self) -> bytes:
        import torch

        from plic.zoo import fingerprint

        return fingerprint({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self._state().items()})

    def save(self, path: str | Path, metadata: Optional[Dict[str, str]] = None) -> bytes:
        """Write the layer (the basis in float16: the fingerprint is of the values as loaded); its fingerprint."""
        from safetensors.numpy import save_file

        from plic.zoo import FINGERPRINT_KEY

        if self.basis.dtype != np.float32 or not np.array_equal(self.basis, self.basis.astype(np.float16)):
            raise PlicError("round the basis to float16 first (ResidualLayer.halved) so that file and layer agree")
        state = dict(self._state(), basis=self.basis.astype(np.float16))
        meta = {KIND: json.dumps({"block": BLOCK, "classes": len(self.edges) + 1}), **(metadata or {}),
                FINGERPRINT_KEY: self.fingerprint.hex()}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(tmp), metadata=meta)
        tmp.replace(path)
        return self.fingerprint

    def halved(self) -> "ResidualLayer":
        """The same layer with its basis rounded to float16, as it is stored."""
        return ResidualLayer(self.basis.astype(np.float16).astype(np.float32), self.edges, self.scales,
                             self.table_scales, self.cdfs, self.cdf_lengths, self.offsets)

    @classmethod
    def load(cls, path: str | Path) -> "ResidualLayer":
        from safetensors.numpy import load_file

        from plic.zoo import read_metadata, stored_fingerprint

        meta = read_metadata(path)
        if KIND not in meta:
            raise PlicError(f"{path}: not a residual layer's file")
        try:
            state = load_file(str(path))
            layer = cls(**{k: state[k] for k in ("basis", "edges", "scales", "table_scales", "cdfs", "cdf_lengths",
                                                 "offsets")})
        except (KeyError, ValueError, OSError) as exc:
            raise PlicError(f"{path}: unreadable residual layer ({exc})") from None
        if stored_fingerprint(path, meta) not in (None, layer.fingerprint):
            raise PlicError(f"{path}: the layer does not match the fingerprint in its metadata (damaged file?)")
        return layer

    def _indexes(self, base: np.ndarray, step: float) -> np.ndarray:
        """The table each coefficient is coded with: its class's scale over the step, among the table scales."""
        scale = self.scales.astype(np.float64)[np.searchsorted(self.edges, activity(base), side="right")]
        return np.searchsorted(self.boundaries, scale / np.float64(step)).astype(np.int32)

    def _check_step(self, step: float) -> float:
        step = float(np.float32(step))  # as a file stores it
        if not (np.isfinite(step) and 0.5 <= step <= 1024):
            raise PlicError(f"residual step {step:g} is outside 0.5..1024 (8-bit units)")
        return step

    def encode(self, image: np.ndarray, base: np.ndarray, step: float) -> bytes:
        """The rANS stream of ``image - base`` (both (H, W, 3) 8-bit values) at quantization ``step``."""
        from compressai.ans import RansEncoder

        step = self._check_step(step)
        if image.shape != base.shape or image.ndim != 3 or image.shape[2] != 3:
            raise PlicError("the residual layer codes 3-channel images over a base of the same size")
        residual = padded(np.asarray(image, dtype=np.float64) - np.asarray(base, dtype=np.float64))
        symbols = np.rint(to_blocks(residual) @ self._basis64 / step).astype(np.int32)
        return RansEncoder().encode_with_indexes(symbols.ravel().tolist(), self._indexes(base, step).ravel().tolist(),
                                                 self.cdfs.tolist(), self.cdf_lengths.tolist(),
                                                 self.offsets.tolist())

    def decode(self, data: bytes, base: np.ndarray, step: float) -> np.ndarray:
        """``base`` (H, W, 3) 8-bit values plus the decoded residual, rounded and clipped to 8 bits (uint8)."""
        from compressai.ans import RansDecoder

        step = self._check_step(step)
        h, w = base.shape[0], base.shape[1]
        indexes = self._indexes(base, step)
        # compressai's rANS reads without bounds checks: zero bytes after the stream keep a damaged one
        # inside the buffer (as plic.codec pads the latent payloads)
        data = bytes(data) + bytes(16 * len(data) + 4 * indexes.size + 64)
        symbols = np.asarray(RansDecoder().decode_with_indexes(data, indexes.ravel().tolist(), self.cdfs.tolist(),
                                                              self.cdf_lengths.tolist(), self.offsets.tolist()),
                             dtype=np.float64)
        residual = from_blocks(symbols.reshape(indexes.shape) * step @ self._basis64.T, *padded(base).shape[:2])
        return np.clip(np.rint(np.asarray(base, dtype=np.float64) + residual[:h, :w]), 0, 255).astype(np.uint8)
