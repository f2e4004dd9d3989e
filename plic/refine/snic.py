"""The image space: SNIC's substitutional image (Wang et al.).

The variable is the input image itself, clipped to [0, 1] after every step;
the distortion is always measured against the *original* image, and the
ordinary encoder codes the substitute, so the file is an ordinary file.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from plic.refine.problem import FrozenProblem


class ImageSpace:
    name = "image"

    def start(self, problem: FrozenProblem, x_start: Tensor) -> List[Tensor]:
        return [x_start]

    def latents(self, problem: FrozenProblem, variables: List[Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
        return problem.analysis(variables[0]), None

    def project(self, variables: List[Tensor]) -> None:
        with torch.no_grad():
            variables[0].clamp_(0, 1)  # a substitute is an image

    def substitute(self, variables: List[Tensor]) -> Optional[Tensor]:
        return variables[0]
