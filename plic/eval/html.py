"""Self-contained HTML pages to look at a benchmark's images: ``plic eval --html``.

One page per image and target rate: the original and every codec's
reconstruction at that rate (the real files the numbers came from, decoded
again), each with its numbers underneath; and a viewer at full resolution
that slides or flips between any two of them. Everything -- pixels as PNG
data URIs, styles, script -- is inside the one file, so a page can be mailed
or committed and opened anywhere, offline.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from PIL import Image

from plic.errors import PlicError
from plic.files import atomic_write_bytes

#: metrics shown under each picture, in this order, with how they read
COLUMNS = (
    ("bpp", "bpp", None),
    ("psnr", "PSNR dB", "high"),
    ("ms-ssim", "MS-SSIM", "high"),
    ("lpips-alex", "LPIPS-Alex", "low"),
    ("lpips-vgg", "LPIPS-VGG", "low"),
    ("dists", "DISTS", "low"),
)


def _png_uri(rgb: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def page_entries(results: Path, image: str, setting: str, codecs: Optional[Sequence[str]] = None,
                 device: str = "cpu") -> List[Dict]:
    """The original and each codec's decoded file for ``image`` at ``setting``, with their points."""
    from plic.eval.learned import make_codec
    from plic.eval.runner import FILE_EXT, load_rgb, safe_name

    manifest = json.loads((results / "manifest.json").read_text())
    names = list(codecs or manifest.get("codecs", {}))
    stem = Path(image).stem
    ref = load_rgb(Path(manifest["data"]) / image if Path(manifest["data"]).is_dir() else Path(manifest["data"]))
    entries = [{"name": "original", "label": "original", "rgb": ref, "point": None}]
    for name in names:
        point_path = results / "points" / safe_name(name) / setting / f"{stem}.json"
        ext = "plic" if name.startswith("plic:") else FILE_EXT.get(name, "bin")
        file_path = results / "files" / safe_name(name) / setting / f"{stem}.{ext}"
        if not point_path.is_file() or not file_path.is_file():
            continue
        codec = make_codec(name, device)
        rec = codec.decode(file_path.read_bytes())
        label = manifest.get("codecs", {}).get(name, {}).get("label", name)
        entries.append({"name": name, "label": label, "rgb": rec, "point": json.loads(point_path.read_text())})
    if len(entries) < 2:
        raise PlicError(f"{results}: no coded files for {image} at {setting}")
    return entries


def render_page(entries: List[Dict], image: str, setting: str, note: str = "") -> str:
    """The page's HTML for entries as :func:`page_entries` returns them."""
    shown = [c for c in COLUMNS if any(e["point"] and (c[0] == "bpp" or c[0] in e["point"]["metrics"])
                                       for e in entries)]
    best = {}
    for key, _, better in shown:
        vals = [_value(e, key) for e in entries if _value(e, key) is not None]
        if better and vals:
            best[key] = max(vals) if better == "high" else min(vals)
    cards, table = [], []
    for i, e in enumerate(entries):
        cells = []
        for key, _, _ in shown:
            v = _value(e, key)
            text = "&ndash;" if v is None else (f"{v:.4f}" if key != "psnr" else f"{v:.2f}")
            strong = v is not None and best.get(key) == v
            cells.append(f"<td>{'<b>' + text + '</b>' if strong else text}</td>")
        table.append(f"<tr><th>{html.escape(e['label'])}</th>{''.join(cells)}</tr>")
        numbers = " &middot; ".join(
            f"{title} {('%.2f' if key == 'psnr' else '%.4f') % _value(e, key)}"
            for key, title, _ in shown if _value(e, key) is not None)
        cards.append(f'<figure class="card" data-i="{i}"><img id="t{i}" alt="{html.escape(e["label"])}">'
                     f'<figcaption><b>{html.escape(e["label"])}</b><br>{numbers or "reference"}</figcaption></figure>')
    options = "".join(f'<option value="{i}">{html.escape(e["label"])}</option>' for i, e in enumerate(entries))
    sources = json.dumps([_png_uri(e["rgb"]) for e in entries])
    head = "".join(f"<th>{t}</th>" for _, t, _ in shown)
    h, w = entries[0]["rgb"].shape[:2]
    target = setting[3:] + " bpp" if setting.startswith("bpp") else setting
    return _TEMPLATE.format(
        title=html.escape(f"{image} at {target}"), note=note, options=options, cards="".join(cards),
        head=head, rows="".join(table), sources=sources, w=w, h=h, right=min(1, len(entries) - 1))


def _value(entry: Dict, key: str) -> Optional[float]:
    p = entry["point"]
    if p is None:
        return None
    return p["bpp"] if key == "bpp" else p["metrics"].get(key)


def write_pages(results: Path, out: Optional[Path] = None, images: Optional[Sequence[str]] = None,
                settings: Optional[Sequence[str]] = None, codecs: Optional[Sequence[str]] = None,
                note: str = "", device: str = "cpu") -> List[Path]:
    """One page per image and setting (default: every target rate of the results) under ``results/html``."""
    manifest_path = results / "manifest.json"
    if not manifest_path.is_file():
        raise PlicError(f"{results}: not a plic eval results folder (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    out = out or results / "html"
    settings = list(settings or [f"bpp{t:g}" for t in manifest.get("targets", [])])
    if not settings:
        raise PlicError("no target rates in these results: run plic eval with --targets for --html pages")
    written = []
    for image in images or manifest["images"]:
        for setting in settings:
            entries = page_entries(results, image, setting, codecs, device)
            path = out / f"{Path(image).stem}_{setting}.html"
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, render_page(entries, image, setting, note).encode())
            written.append(path)
    return written


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>plic: {title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; background: #fafafa; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }}
.note {{ color: #555; max-width: 70em; }}
.controls {{ margin: 12px 0; display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }}
.viewer {{ position: relative; width: {w}px; height: {h}px; overflow: hidden; cursor: ew-resize;
           border: 1px solid #999; user-select: none; }}
.viewer img {{ position: absolute; left: 0; top: 0; width: {w}px; height: {h}px; image-rendering: pixelated; }}
.viewer .line {{ position: absolute; top: 0; bottom: 0; width: 2px; background: #ff0; pointer-events: none; }}
.tag {{ position: absolute; top: 6px; padding: 2px 6px; background: rgba(0,0,0,.6); color: #fff; font-size: 12px; }}
#tagA {{ left: 6px; }} #tagB {{ right: 6px; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 12px; margin-top: 16px; }}
.card {{ margin: 0; background: #fff; border: 1px solid #ddd; padding: 6px; cursor: pointer; }}
.card img {{ width: 100%; display: block; }}
.card figcaption {{ font-size: 12px; margin-top: 4px; }}
table {{ border-collapse: collapse; margin-top: 16px; background: #fff; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th:first-child {{ text-align: left; }}
</style></head><body>
<h1>plic: {title}</h1>
<p class="note">Every picture is the decoded real file at the same target rate (bisection on each codec's
quality knob). {note} Drag over the picture (slide) or press the space bar (flip) to compare two of them at
full resolution; click a picture below to put it on the left.</p>
<div class="controls">
 <label>left <select id="a">{options}</select></label>
 <label>right <select id="b">{options}</select></label>
 <label><input type="radio" name="mode" value="slide" checked> slide</label>
 <label><input type="radio" name="mode" value="flip"> flip (space)</label>
</div>
<div class="viewer" id="viewer">
 <img id="imgB" alt="right"><img id="imgA" alt="left">
 <div class="line" id="line"></div><span class="tag" id="tagA"></span><span class="tag" id="tagB"></span>
</div>
<table><tr><th>codec</th>{head}</tr>{rows}</table>
<div class="grid">{cards}</div>
<script>
const SRC = {sources};
const $ = (id) => document.getElementById(id);
const a = $("a"), b = $("b"), A = $("imgA"), B = $("imgB"), line = $("line"), viewer = $("viewer");
let split = 0.5, flipped = false;
b.value = "{right}";
SRC.forEach((s, i) => {{ $("t" + i).src = s; }});
function mode() {{ return document.querySelector("input[name=mode]:checked").value; }}
function draw() {{
  A.src = SRC[a.value]; B.src = SRC[b.value];
  $("tagA").textContent = a.options[a.selectedIndex].text;
  $("tagB").textContent = b.options[b.selectedIndex].text;
  if (mode() === "slide") {{
    A.style.visibility = "visible";
    A.style.clipPath = "inset(0 " + (100 - split * 100) + "% 0 0)";
    line.style.display = "block"; line.style.left = (split * 100) + "%";
    $("tagB").style.display = "block";
  }} else {{
    A.style.clipPath = "none"; line.style.display = "none";
    A.style.visibility = flipped ? "hidden" : "visible";
    $("tagA").textContent = flipped ? b.options[b.selectedIndex].text : a.options[a.selectedIndex].text;
    $("tagB").style.display = "none";
  }}
}}
viewer.addEventListener("mousemove", (e) => {{
  if (mode() !== "slide") return;
  const r = viewer.getBoundingClientRect();
  split = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)); draw();
}});
viewer.addEventListener("click", () => {{ if (mode() === "flip") {{ flipped = !flipped; draw(); }} }});
document.addEventListener("keydown", (e) => {{
  if (e.code === "Space") {{ e.preventDefault(); flipped = !flipped;
    document.querySelector("input[value=flip]").checked = true; draw(); }}
}});
document.querySelectorAll("input[name=mode]").forEach((r) => r.addEventListener("change", draw));
a.addEventListener("change", draw); b.addEventListener("change", draw);
document.querySelectorAll(".card").forEach((c) => c.addEventListener("click", () => {{
  a.value = c.dataset.i; draw(); viewer.scrollIntoView();
}}));
draw();
</script></body></html>
"""
