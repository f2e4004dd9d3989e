"""Training crops from image folders.

Images are decoded once and kept in memory as uint8 (the training set here is
a few hundred megabytes); every sample is a random crop of a randomly
down-scaled region, so JPEG block artefacts of sources such as BSDS500 are
shrunk away, plus a random horizontal flip. Sampling draws from a
``torch.Generator`` whose state is checkpointed, so a resumed run sees the
same crops it would have seen without the interruption.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from plic.errors import PlicError
from plic.image_io import IMAGE_SUFFIXES


def find_images(roots: Sequence[str | Path]) -> List[Path]:
    files: List[Path] = []
    for root in roots:
        root = Path(root)
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files += sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise PlicError(f"{root}: no such file or folder")
    if not files:
        raise PlicError(f"no images found in {', '.join(map(str, roots))}")
    return files


class RandomCrops:
    """Batches of random crops, float [B, 3, crop, crop] in [0, 1].

    Args:
        roots: image files or folders (searched recursively).
        crop: crop edge in pixels.
        scale_range: each crop is taken from a region ``crop / s`` wide,
            ``s`` uniform in this range, and resized to ``crop`` with
            anti-aliasing.
    """

    def __init__(self, roots: Sequence[str | Path], crop: int = 128,
                 scale_range: tuple = (0.6, 1.0), max_images: int | None = None):
        self.crop = int(crop)
        self.scale_range = tuple(scale_range)
        self.images: List[torch.Tensor] = []
        files = find_images(roots)
        if max_images:
            files = files[:max_images]
        skipped = 0
        for path in files:
            try:
                with Image.open(path) as im:
                    arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
            except Exception:
                skipped += 1
                continue
            if min(arr.shape[:2]) < self.crop:
                skipped += 1
                continue
            self.images.append(torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous())
        if not self.images:
            raise PlicError(f"no usable training images of at least {crop}x{crop} pixels")
        self.skipped = skipped
        self._usable: dict = {}

    def __len__(self) -> int:
        return len(self.images)

    def usable(self, crop: int) -> List[int]:
        """Indices of the images at least ``crop`` pixels on their short side (larger crops than the
        one the set was built for draw from fewer images)."""
        if crop not in self._usable:
            self._usable[crop] = [i for i, im in enumerate(self.images) if min(im.shape[1:]) >= crop]
        return self._usable[crop]

    def sample(self, batch_size: int, gen: torch.Generator, crop: int | None = None) -> torch.Tensor:
        """``batch_size`` crops of ``crop`` pixels (default: the set's own; not below it)."""
        crop = self.crop if crop is None else int(crop)
        if crop < self.crop:
            raise ValueError(f"this set was built for crops of at least {self.crop} pixels, not {crop}")
        pool = self.usable(crop)
        if not pool:
            raise PlicError(f"no training image is at least {crop}x{crop} pixels")
        out = torch.empty(batch_size, 3, crop, crop)
        lo, hi = self.scale_range
        for i in range(batch_size):
            img = self.images[pool[int(torch.randint(len(pool), (1,), generator=gen))]]
            _, h, w = img.shape
            s = lo + (hi - lo) * float(torch.rand(1, generator=gen))
            side = min(int(round(crop / s)), h, w)  # never crop past the image
            r = int(torch.randint(h - side + 1, (1,), generator=gen))
            c = int(torch.randint(w - side + 1, (1,), generator=gen))
            patch = img[:, r:r + side, c:c + side].float().unsqueeze(0) / 255
            if side != crop:
                patch = F.interpolate(patch, size=(crop, crop), mode="bilinear",
                                      antialias=True, align_corners=False)
            if float(torch.rand(1, generator=gen)) < 0.5:
                patch = patch.flip(-1)
            out[i] = patch[0].clamp(0, 1)
        return out


class Prefetcher:
    """Draws batches on a background thread, ahead of the training step.

    ``draw(gen)`` makes one batch from a generator; the thread owns the
    generator and hands out ``(batch, state_after)``, where ``state_after``
    is the generator state just after that batch was drawn. A checkpoint
    saves the state after the last batch *consumed* (:attr:`state`), not the
    thread's, so a resumed run draws exactly the batches an uninterrupted run
    would have. The crops (decode, resize) are numpy/torch work that releases
    the GIL, so they overlap with a GPU step.
    """

    def __init__(self, draw, gen: torch.Generator, depth: int = 2):
        import queue
        import threading

        self._draw = draw
        self._gen = gen
        self.state = gen.get_state()
        self._queue: "queue.Queue" = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, daemon=True, name="plic-prefetch")
        self._thread.start()

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                batch = self._draw(self._gen)
                item = (batch, self._gen.get_state())
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except Exception:  # queue.Full: wait for the consumer
                        continue
        except BaseException as exc:  # surfaced in next()
            self._queue.put((exc, None))

    def next(self):
        batch, state = self._queue.get()
        if state is None:
            raise batch
        self.state = state
        return batch

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
