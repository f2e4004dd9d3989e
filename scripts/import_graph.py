"""plic's import graph by layer: lists every import that points upward (docs/architecture.md).

    python scripts/import_graph.py            # exit status 1 if any import points up

Reads the source with ``ast`` (nothing is imported), counting imports at
module level and inside functions alike: a deferred import is still a
dependency.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "plic"

#: bottom to top; a module may import its own layer and the ones below
LAYERS = [
    ("base", ["errors", "files", "search", "units", "bitstream", "_compressai", "registry", "__init__"]),
    ("blocks", ["image_io", "models", "losses", "metrics", "zoo", "residual_layer"]),
    ("codec", ["codec", "ladder", "iqa"]),
    ("methods", ["encode", "refine", "train", "eval", "importer"]),
    ("recipes", ["recipes"]),
    ("cli", ["cli", "__main__"]),
]
LEVEL = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}


def layer_of(module: str) -> int:
    parts = module.split(".")
    if parts[0] != "plic":
        return -1
    return LEVEL.get(parts[1] if len(parts) > 1 else "__init__", -1)


def imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "plic":  # from plic import zoo, bitstream
                for alias in node.names:
                    yield f"plic.{alias.name}", node.lineno
            else:
                yield node.module, node.lineno


def main() -> int:
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        module = "plic." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
        mine = layer_of(module)
        for target, line in imports(path):
            theirs = layer_of(target)
            if target.startswith("plic") and theirs > mine >= 0:
                upward.append(f"{path.relative_to(ROOT.parent)}:{line}: {module} ({LAYERS[mine][0]}) imports "
                              f"{target} ({LAYERS[theirs][0]})")
    for line in upward:
        print(line)
    print(f"{len(upward)} upward import(s)")
    return 1 if upward else 0


if __name__ == "__main__":
    sys.exit(main())
