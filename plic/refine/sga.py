"""The latent space: SGA+ (Perugachi-Diaz et al.; SGA, Yang et al. 2020) and SNIC's substitutional latent.

The variables are the latent the entropy coder codes (``y / a``) and the
hyper-latent ``z``; quantization is replaced by a soft rounding
(:mod:`plic.refine.rounding`) whose temperature the loop anneals. The result
is coded as it is: the decoder never knows.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from torch import Tensor

from plic.models.latent_hooks import hyper_analysis
from plic.refine.problem import FrozenProblem


class LatentSpace:
    name = "latent"

    def __init__(self, refine_z: bool = True):
        self.refine_z = refine_z

    def start(self, problem: FrozenProblem, x_start: Tensor) -> List[Tensor]:
        """The variables at the start: the analysis of ``x_start`` (and its hyper-latent)."""
        y0 = problem.analysis(x_start)
        return [y0, hyper_analysis(problem.lc, y0)] if self.refine_z else [y0]

    def latents(self, problem: FrozenProblem, variables: List[Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
        return variables[0], (variables[1] if len(variables) > 1 else None)

    def project(self, variables: List[Tensor]) -> None:
        pass  # any latent is codable

    def substitute(self, variables: List[Tensor]) -> Optional[Tensor]:
        return None
