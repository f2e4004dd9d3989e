"""plic: perception-oriented learned image compression."""

__version__ = "0.1.0"

import warnings as _warnings

# compressai scripts a helper with torch.jit at import, which torch >= 2.10 flags
# as deprecated on every run; the warning is about compressai's code, not the user's.
_warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*is deprecated", category=FutureWarning)
