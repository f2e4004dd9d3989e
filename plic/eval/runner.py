"""The R-D benchmark: every codec at every setting on every image, cached on disk.

Layout of an output folder::

    points/<codec>/<setting>/<image>.json     one coded image: bytes, bpp, metrics, times
    files/<codec>/<setting>/<image>.<ext>     the real coded file (bpp comes from its size)
    features/<extractor>/<codec>/<setting>/<image>.npy   patch features for FID/KID/FD
    summary.json, summary.md, plots/*.png     written by :mod:`plic.eval.report`

A point is written (atomically) once its image is coded and scored, so an
interrupted run resumes where it stopped, and a rerun with more metrics only
computes the missing ones, decoding the kept file again. Each point records
the codec's version (encoder library, or a plic model's weight fingerprint);
a point made by another version is coded again, so new weights or a new
encoder never hide behind old results. (Points written before versions were
recorded are stamped once with the version the folder's manifest held for
their codec, before a run rewrites the manifest.) ``setting`` is the
codec's knob value (``q3``, ``d1.8``...) or ``bpp0.15`` for a point reached by
bisection to a target bpp (or, for a codec with ``encode_to_bpp``, by its own means: a
refined plic codec searches lambda once and holds its optimisation at the target).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from plic.errors import PlicError
from plic.eval.codecs import ClassicalCodec, encode_at_bpp
from plic.eval.learned import make_codec
from plic.image_io import IMAGE_SUFFIXES, atomic_write_bytes, open_image
from plic.metrics import Metric, get_metric

FILE_EXT = {"jpeg": "jpg", "jpeg444": "jpg", "webp": "webp", "avif": "avif", "jxl": "jxl", "jpeg2000": "j2k",
            "hevc": "hevc"}


def list_images(data: Path) -> List[Path]:
    if data.is_file():
        return [data]
    if not data.is_dir():
        raise PlicError(f"{data}: no such file or folder")
    images = sorted(p for p in data.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise PlicError(f"{data}: no images ({', '.join(sorted(s[1:] for s in IMAGE_SUFFIXES))})")
    return images


def load_rgb(path: Path) -> np.ndarray:
    """The original as 8-bit RGB, read with plic's image policy (EXIF orientation, errors)."""
    return np.array(open_image(path).convert("RGB"))


def setting_key(codec: ClassicalCodec, setting: float) -> str:
    value = int(setting) if float(setting).is_integer() else float(setting)
    return f"{codec.knob[0]}{value}"


def safe_name(codec_name: str) -> str:
    return codec_name.replace(":", "-").replace("/", "_")


@dataclass
class Task:
    codec: ClassicalCodec
    key: str                     # folder name of the setting
    setting: Optional[float]     # knob value, or None for a target-bpp point
    target_bpp: Optional[float]
    image: Path


@dataclass
class Benchmark:
    data: Path
    codecs: Sequence[str]
    metrics: Sequence[str]
    out: Path
    targets: Sequence[float] = ()
    sweep: bool = True
    limit: Optional[int] = None
    points: Optional[int] = None  # use this many settings spread over each codec's sweep
    device: str = "cpu"
    skipped: Dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.images = list_images(self.data)[: self.limit]
        self.metric_objs: List[Metric] = [get_metric(m) for m in self.metrics]
        if any(m.features == "inception" for m in self.metric_objs):
            from plic.metrics.fid import inception_network

            inception_network(self.device)  # no Inception weights: say so before coding anything
        self.codec_objs: List[ClassicalCodec] = []
        for spec in self.codecs:
            codec = make_codec(spec, self.device)
            reason = codec.unavailable()
            if reason:
                self.skipped[codec.name] = reason
            else:
                self.codec_objs.append(codec)
        self.versions = {c.name: c.version() for c in self.codec_objs}

    def _stamp_legacy_points(self) -> None:
        """Give points written before versions were recorded the version the manifest held.

        Done once, before this run rewrites the manifest with today's versions:
        afterwards every point carries its own version.
        """
        manifest = self.out / "manifest.json"
        if not manifest.is_file() or not (self.out / "points").is_dir():
            return
        known = {name: c.get("version") for name, c in json.loads(manifest.read_text()).get("codecs", {}).items()}
        for path in (self.out / "points").rglob("*.json"):
            point = json.loads(path.read_text())
            if "version" not in point:
                point["version"] = known.get(point.get("codec"))
                atomic_write_bytes(path, (json.dumps(point, indent=1) + "\n").encode())

    def point_version(self, point: dict) -> Optional[str]:
        return point.get("version")

    def _current(self, point: Optional[dict], t: Task) -> bool:
        return point is not None and self.point_version(point) == self.versions[t.codec.name]

    # ----------------------------------------------------------------- tasks
    def tasks(self) -> List[Task]:
        """Image by image (the original and its features stay in memory across codecs)."""
        out = []
        for img in self.images:
            for codec in self.codec_objs:
                keys = [(setting_key(codec, s), s, None) for s in (self.settings(codec) if self.sweep else [])]
                keys += [(f"bpp{t:g}", None, t) for t in self.targets]
                out += [Task(codec, key, setting, target, img) for key, setting, target in keys]
        return out

    def settings(self, codec: ClassicalCodec) -> List[float]:
        sweep = list(codec.sweep)
        if self.points is None or self.points >= len(sweep):
            return sweep
        return [sweep[i] for i in sorted(set(np.linspace(0, len(sweep) - 1, self.points).round().astype(int)))]

    def point_path(self, t: Task) -> Path:
        return self.out / "points" / safe_name(t.codec.name) / t.key / f"{t.image.stem}.json"

    def file_path(self, t: Task) -> Path:
        ext = "plic" if t.codec.name.startswith("plic:") else FILE_EXT.get(t.codec.name, "bin")  # compressai: bin
        return self.out / "files" / safe_name(t.codec.name) / t.key / f"{t.image.stem}.{ext}"

    def feature_path(self, extractor: str, codec: str, key: str, image: Path) -> Path:
        return self.out / "features" / extractor / safe_name(codec) / key / f"{image.stem}.npy"

    def missing(self, t: Task) -> List[Metric]:
        """Metrics of ``t`` not yet on disk (all of them, and the coding, when no point exists)."""
        p = self.point_path(t)
        if not p.is_file():
            return list(self.metric_objs)
        point = json.loads(p.read_text())
        if not self._current(point, t):
            return list(self.metric_objs)
        todo = []
        for m in self.metric_objs:
            if m.pair is not None and m.name not in point["metrics"]:
                todo.append(m)
            elif m.features and not self.feature_path(m.features, t.codec.name, t.key, t.image).is_file():
                todo.append(m)
        return todo

    # ------------------------------------------------------------------- run
    def run(self, progress: Optional[Callable[[Task], None]] = None) -> int:
        """Code and score every task not yet done; returns how many were (re)computed."""
        self.out.mkdir(parents=True, exist_ok=True)
        self._stamp_legacy_points()
        self._write_manifest()
        done = 0
        ref_cache: Dict[Path, np.ndarray] = {}
        for t in self.tasks():
            todo = self.missing(t)
            if todo:
                if t.image not in ref_cache:
                    ref_cache.clear()  # one original in memory at a time
                    ref_cache[t.image] = load_rgb(t.image)
                self._run_task(t, ref_cache[t.image], todo)
                done += 1
            if progress:
                progress(t)
        return done

    def _run_task(self, t: Task, ref: np.ndarray, todo: List[Metric]) -> None:
        p, f = self.point_path(t), self.file_path(t)
        point = json.loads(p.read_text()) if p.is_file() else None
        if not self._current(point, t) or not f.is_file():
            t0 = time.perf_counter()
            if t.target_bpp is not None:
                meets = getattr(t.codec, "encode_to_bpp", None)  # a codec that meets a target itself
                setting, data = meets(ref, t.target_bpp) if meets else encode_at_bpp(t.codec, ref, t.target_bpp)
            else:
                setting, data = t.setting, t.codec.encode(ref, t.setting)
            enc = time.perf_counter() - t0
            f.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(f, data)
            point = {"image": t.image.name, "codec": t.codec.name, "version": self.versions[t.codec.name],
                     "setting": t.key, "knob": t.codec.knob,
                     "knob_value": float(setting), "target_bpp": t.target_bpp, "height": int(ref.shape[0]),
                     "width": int(ref.shape[1]), "encode_s": enc, "metrics": {}}
            todo = list(self.metric_objs)
            for m in todo:  # features of a file coded by another version are void
                if m.features:
                    self.feature_path(m.features, t.codec.name, t.key, t.image).unlink(missing_ok=True)
        data = f.read_bytes()
        point["bytes"] = len(data)
        point["bpp"] = 8 * len(data) / (ref.shape[0] * ref.shape[1])
        t0 = time.perf_counter()
        rec = t.codec.decode(data)
        point["decode_s"] = time.perf_counter() - t0
        if rec.shape != ref.shape:
            raise PlicError(f"{t.codec.name} decoded {t.image.name} to {rec.shape}, not {ref.shape}")
        for m in todo:
            if m.pair is not None:
                point["metrics"][m.name] = m.pair(ref, rec)
            else:
                self._features(m.features, ref, t, rec)
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(p, (json.dumps(point, indent=1) + "\n").encode())

    def _features(self, extractor: str, ref: np.ndarray, t: Task, rec: np.ndarray) -> None:
        from plic.metrics.fid import patch_features

        ref_path = self.feature_path(extractor, "reference", "original", t.image)
        for arr, path in ((ref, ref_path), (rec, self.feature_path(extractor, t.codec.name, t.key, t.image))):
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.name + ".part.npy")
                np.save(tmp, patch_features(arr, extractor, self.device))
                os.replace(tmp, path)

    def _write_manifest(self) -> None:
        import torch

        manifest = {
            "data": str(self.data), "images": [p.name for p in self.images],
            "codecs": {c.name: {"label": c.label, "knob": c.knob, "version": self.versions[c.name]}
                       for c in self.codec_objs},
            "skipped": self.skipped, "metrics": [m.name for m in self.metric_objs], "targets": list(self.targets),
            "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, torch {torch.__version__}",
        }
        path = self.out / "manifest.json"
        if path.is_file():  # keep codecs of earlier runs into the same folder
            old = json.loads(path.read_text())
            manifest["codecs"] = {**old.get("codecs", {}), **manifest["codecs"]}
            manifest["metrics"] = sorted(set(old.get("metrics", [])) | set(manifest["metrics"]))
            manifest["targets"] = sorted(set(old.get("targets", [])) | set(manifest["targets"]))
        atomic_write_bytes(path, (json.dumps(manifest, indent=1) + "\n").encode())
