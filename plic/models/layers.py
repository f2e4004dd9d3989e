"""A transform's layers with modules beside them that are not layers."""

from __future__ import annotations

from torch import nn


class LayersWithExtras(nn.Sequential):
    """An ``nn.Sequential`` whose iteration, ``len()`` and indexing see its layers only, not the modules
    registered under the names in ``EXTRAS`` (paths beside the layers, conditioning networks).

    The layers keep the names a plain ``nn.Sequential`` gives them (``0``, ``1``, ...), so weight files
    of the plain transform load into it and code that indexes the layers works on both.
    """

    EXTRAS: tuple = ()

    def __iter__(self):
        return (m for name, m in self._modules.items() if name not in self.EXTRAS)

    def __len__(self) -> int:
        return sum(1 for name in self._modules if name not in self.EXTRAS)

    def __getitem__(self, idx):
        layers = list(iter(self))
        return nn.Sequential(*layers[idx]) if isinstance(idx, slice) else layers[idx]
