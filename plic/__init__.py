"""plic: perception-oriented learned image compression."""

__version__ = "0.1.0"

import warnings as _warnings

# compressai scripts a helper with torch.jit at import, which torch >= 2.10 flags
# as deprecated on every run; the warning is about compressai's code, not the user's.
_warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*is deprecated", category=FutureWarning)

# compressai's package __init__ imports its data sets and torch_geometric (seconds
# of start-up for modules plic never uses): import its coding modules without it
from plic import _compressai as _compressai_lite  # noqa: E402

_compressai_lite.install()
