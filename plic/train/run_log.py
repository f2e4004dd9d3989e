"""The run folder's CSV logs (train.csv, eval.csv): appended at each checkpoint, cut back on resume.

A run resumed by a newer plic may log more columns than the file has: the
header is widened in place (atomically) and old rows keep empty cells.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Dict, List

from plic.files import atomic_write_bytes


def csv_text(fields: List[str], rows: List[Dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, restval="")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def append_rows(path: Path, rows: List[Dict]) -> None:
    if not rows:
        return
    fields = list(rows[0])
    if path.exists():
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            old_fields = list(reader.fieldnames or [])
            if old_fields != fields and set(fields) - set(old_fields):
                old_rows = list(reader)
                fields = old_fields + [k for k in fields if k not in old_fields]
                atomic_write_bytes(path, csv_text(fields, old_rows).encode())
            else:
                fields = old_fields or fields
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        if new:
            w.writeheader()
        w.writerows(rows)


def truncate_after(path: Path, step: int) -> None:
    """Drop the rows written past ``step`` (a resumed run logs them again)."""
    if not path.exists():
        return
    with path.open() as f:
        rows = list(csv.DictReader(f))
    keep = [r for r in rows if int(float(r["step"])) <= step]
    if len(keep) != len(rows):
        text = csv_text(list(keep[0]), keep) if keep else ""
        atomic_write_bytes(path, text.encode())
