"""plic's hyperprior and CompressAI's own ``MeanScaleHyperprior``, both ways (and CompressAI's autoregressive models, into plic).

The two share every layer (CompressAI's ``conv``/``deconv``/``GDN`` and its
entropy models); plic wraps the hyper-analysis, hyper-synthesis and entropy
models in a ``HyperpriorLatentCodec`` and adds QVRF's quantization step ``a``:
``y -> y / a -> code -> * a -> g_s``. Folding ``1/a`` into the last analysis
convolution and ``a`` into the first synthesis deconvolution (both linear in
that input) gives a plain CompressAI model that codes at that lambda exactly
as plic does, up to float rounding. ``plic bench`` times CompressAI's own
``compress()``/``decompress()`` on it, next to plic's coder of the same weights.

The other way, :func:`from_compressai` makes a fixed-rate plic model (QVRF
step 1 at its one lambda) of a CompressAI model: ``plic import`` uses it.
"""

from __future__ import annotations

import torch

from plic.models.base import load_state_resizing
from plic.models.elic import ELIC, ELICChandelier
from plic.models.hyperprior import MeanScaleHyperprior
from plic.models.joint_autoregressive import Cheng2020Anchor, Cheng2020Attention, Mbt2018
from plic.models.scale_hyperprior import ScaleHyperprior
from plic.models.vbr import Mbt2018Vbr, MeanScaleHyperpriorVbr, ScaleHyperpriorVbr, Vbr

#: plic class -> the CompressAI class with the same layers (both ways: a QVRF step folds into their
#: first and last linear layers)
TWINS = {MeanScaleHyperprior: "MeanScaleHyperprior", ScaleHyperprior: "ScaleHyperprior"}
#: and the ones plic imports only (fixed-rate: nothing to fold)
IMPORTS = {**TWINS, Mbt2018: "JointAutoregressiveHierarchicalPriors", Cheng2020Anchor: "Cheng2020Anchor",
           Cheng2020Attention: "Cheng2020Attention", ELIC: "Elic2022Official", ELICChandelier: "Elic2022Chandelier",
           MeanScaleHyperpriorVbr: "MeanScaleHyperpriorVbr", ScaleHyperpriorVbr: "ScaleHyperpriorVbr",
           Mbt2018Vbr: "JointAutoregressiveHierarchicalPriorsVbr"}

#: plic's state-dict prefixes -> CompressAI ``MeanScaleHyperprior``'s
_PREFIXES = (
    ("latent_codec.hyper.h_a.", "h_a."),
    ("latent_codec.hyper.h_s.", "h_s."),
    ("latent_codec.hyper.entropy_bottleneck.", "entropy_bottleneck."),
    ("latent_codec.y.gaussian_conditional.", "gaussian_conditional."),
    ("latent_codec.y.entropy_parameters.", "entropy_parameters."),
    ("latent_codec.y.context_prediction.", "context_prediction."),
    ("g_a.", "g_a."),
    ("g_s.", "g_s."),
)

#: CompressAI vbr model's state-dict prefixes -> plic's vbr model's
_VBR_PREFIXES = (
    ("g_a.", "g_a."), ("g_s.", "g_s."),
    ("h_a.", "latent_codec.hyper.h_a."), ("h_s.", "latent_codec.hyper.h_s."),
    ("entropy_bottleneck.", "latent_codec.hyper.entropy_bottleneck."),
    ("gaussian_conditional.", "latent_codec.gaussian_conditional."),
    ("Gain", "latent_codec.Gain"), ("QuantABCD.", "latent_codec.QuantABCD."),
    ("gayn2zqstep.", "latent_codec.gayn2zqstep."), ("lower_bound_zqstep.", "latent_codec.lower_bound_zqstep."),
    # mbt2018-vbr's context model
    ("context_prediction.", "latent_codec.context_prediction."),
    ("entropy_parameters.", "latent_codec.entropy_parameters."),
    ("scale_to_context.", "latent_codec.scale_to_context."),
)


def to_compressai(model, lmbda: float):
    """A ``compressai.models`` model (``MeanScaleHyperprior`` or ``ScaleHyperprior``) that codes like ``model`` at ``lmbda``.

    Its CDF tables are plic's own (copied, not recomputed), so the two write
    the same symbols with the same tables.
    """
    import compressai.models

    if (type(model) not in TWINS or getattr(model, "levels", 4) != 4 or model.post_filter is not None
            or getattr(model, "shortcut", False) or getattr(model, "rate_film", False)
            or getattr(model, "transform_channels", model.N) != model.N):
        raise ValueError("only plic's 4-level hyperprior and scale hyperprior without a post-filter, wavelet "
                         "shortcut, rate-conditioned synthesis or transforms of their own width have CompressAI twins")
    a = float(model.quant_step(torch.tensor([lmbda])).item())
    state = _renamed(model.state_dict(), [(ours, theirs) for ours, theirs in _PREFIXES])
    last, first = f"g_a.{len(model.g_a) - 1}", "g_s.0"
    state[f"{last}.weight"] = state[f"{last}.weight"] / a
    state[f"{last}.bias"] = state[f"{last}.bias"] / a
    # a transposed convolution's weight is (in, out, k, k): scaling it scales the input's contribution
    state[f"{first}.weight"] = state[f"{first}.weight"] * a
    twin = getattr(compressai.models, TWINS[type(model)])(model.N, model.M)
    return _loaded(twin, state)


def from_compressai(twin, lmbda: float | None):
    """A fixed-rate plic model at ``lmbda`` holding a CompressAI model's weights (a class of :data:`IMPORTS`);
    a vbr class gives a variable-rate model over its levels (``lmbda`` unused, None)."""
    cls = next((c for c, name in IMPORTS.items() if name == type(twin).__name__), None)
    if cls is None:
        raise ValueError(f"no plic model has the layers of compressai's {type(twin).__name__}")
    if issubclass(cls, ELIC):  # plic's ELIC holds compressai's own modules under the same names
        state = _renamed(twin.state_dict(), [("g_a.", "g_a."), ("g_s.", "g_s."), ("latent_codec.", "latent_codec.")])
        model = cls(N=int(twin.g_a[0].weight.shape[0]), M=sum(twin.groups), groups=twin.groups,
                    lambda_min=lmbda, lambda_max=lmbda)
        return _loaded(model, state)
    if issubclass(cls, Vbr):  # variable-rate: every level
        model = cls(N=int(twin.N), M=int(twin.M), z_variable=bool(twin.vr_entbttlnck))
        state = model.state_dict()  # plic's own buffers (per-level tables) are built at save time
        state.update(_renamed(twin.state_dict(), _VBR_PREFIXES))
        return _loaded(model, state)
    state = _renamed(twin.state_dict(), [(theirs, ours) for ours, theirs in _PREFIXES])
    return _loaded(cls(N=int(twin.N), M=int(twin.M), lambda_min=lmbda, lambda_max=lmbda), state)


def _renamed(state, prefixes):
    """``state`` with each key's first matching ``(old, new)`` prefix replaced (copies of the tensors)."""
    out = {}
    for key, value in state.items():
        for old, new in prefixes:
            if key.startswith(old):
                out[new + key[len(old):]] = value.clone()
                break
    return out


def _loaded(module, state):
    """``module`` holding ``state``, in eval mode."""
    load_state_resizing(module, state)
    return module.eval()
