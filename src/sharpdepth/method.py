"""The steps of SharpDepth that are pure tensor functions (``docs/method.md``).

One implementation of each step, imported by inference, training and evaluation:
depth normalisation (step 3), the noise-aware gate (step 6), forward diffusion and
the gated latent (step 7) and metric recovery by least squares (step 9). All
functions are batched, work on any device and keep their arithmetic in float32 or
float64 whatever the networks run in.

Shapes use ``B`` for the batch, ``H, W`` for image resolution and ``h, w`` for the
latent resolution; depth maps are ``[B, 1, H, W]``.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import torch
import torch.nn.functional as F

LOGGER = logging.getLogger(__name__)

GateVariant = Literal["released", "paper"]
GATE_VARIANTS: tuple[str, ...] = ("released", "paper")
#: What the gate's error is divided by: each image's largest error (ours), or the largest
#: over the whole batch (the released training script at batch size > 1).
GATE_NORMALIZATIONS: tuple[str, ...] = ("image", "batch")


def depth_task_label(
    batch_size: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The Lotus task-switch class label for depth: ``[sin 1, sin 0, cos 1, cos 0]``.

    Returns:
        ``[B, 4]`` tensor, the same row repeated ``batch_size`` times.
    """
    switch = torch.tensor([1.0, 0.0], dtype=torch.float64)
    row = torch.cat([torch.sin(switch), torch.cos(switch)])
    return row.to(device=device, dtype=dtype).unsqueeze(0).repeat(batch_size, 1)


def normalize_depth(depth: torch.Tensor) -> torch.Tensor:
    """Map each depth map linearly to ``[-1, 1]`` by its own minimum and maximum.

    Args:
        depth: ``[B, 1, H, W]`` depth (any unit).

    Returns:
        ``[B, 1, H, W]`` float32 in ``[-1, 1]`` (clipped). A constant map (max == min)
        maps to 0 everywhere instead of NaN.
    """
    d = depth.float()
    flat = d.flatten(1)
    dmin = flat.min(dim=1).values.view(-1, 1, 1, 1)
    dmax = flat.max(dim=1).values.view(-1, 1, 1, 1)
    span = dmax - dmin
    degenerate = span <= 0
    safe_span = torch.where(degenerate, torch.ones_like(span), span)
    normed = (d - dmin) / safe_span * 2.0 - 1.0
    normed = torch.where(degenerate, torch.zeros_like(normed), normed)
    return normed.clamp(-1.0, 1.0)


def noise_aware_gate(
    prior_depth: torch.Tensor, metric_depth_norm: torch.Tensor, normalization: str = "image"
) -> torch.Tensor:
    """The gate ``e``: where the diffusion prior and the metric model disagree.

    ``e = |d_g - d_n| / max |d_g - d_n|``, clipped to ``[0, 1]``; large at edges and thin
    structures, small where both agree. An image where they agree exactly gets ``e = 0``
    (not NaN).

    Args:
        prior_depth: ``[B, 1, H, W]`` the prior's decoded depth ``d_g`` (normalised units).
        metric_depth_norm: ``[B, 1, H, W]`` the normalised metric depth ``d_n``.
        normalization: ``"image"``: the maximum of each image (inference, and training
            by default); ``"batch"``: the maximum over the whole batch, as the released
            training script computes it (the same at batch size 1).

    Returns:
        ``[B, 1, H, W]`` float32 in ``[0, 1]``.
    """
    if normalization not in GATE_NORMALIZATIONS:
        raise ValueError(
            f"gate normalization must be one of {GATE_NORMALIZATIONS}, got {normalization!r}"
        )
    err = (prior_depth.float() - metric_depth_norm.float()).abs()
    if normalization == "batch":
        emax = err.max().view(1, 1, 1, 1)
    else:
        emax = err.flatten(1).max(dim=1).values.view(-1, 1, 1, 1)
    safe = torch.where(emax > 0, emax, torch.ones_like(emax))
    return (err / safe).clamp(0.0, 1.0)


def gate_to_latent(gate: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
    """Resize the gate to latent resolution with nearest-neighbour sampling.

    Args:
        gate: ``[B, 1, H, W]`` in ``[0, 1]``.
        latent_size: ``(h, w)``.

    Returns:
        ``[B, 1, h, w]`` gate ``m``.
    """
    return F.interpolate(gate, size=latent_size, mode="nearest")


def forward_diffuse(x: torch.Tensor, noise: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """Forward diffusion ``q(x, eps, t) = sqrt(abar_t) x + sqrt(1 - abar_t) eps``."""
    return math.sqrt(alpha_bar) * x + math.sqrt(1.0 - alpha_bar) * noise


def gated_latent(
    prior_latent: torch.Tensor,
    metric_latent: torch.Tensor,
    latent_gate: torch.Tensor,
    noise: torch.Tensor,
    alpha_bar: float,
    variant: GateVariant = "released",
) -> torch.Tensor:
    """The sharpener's input latent ``z'`` (inference step 7).

    ``released``: ``z' = m * q(z_g, eps', t) + (1 - m) * z_d``;
    ``paper``: ``z' = m * eps' + (1 - m) * z_d``.

    Args:
        prior_latent: ``[B, C, h, w]`` the prior's x0 latent ``z_g``.
        metric_latent: ``[B, C, h, w]`` the metric depth's latent ``z_d``.
        latent_gate: ``[B, 1, h, w]`` gate ``m`` in ``[0, 1]``.
        noise: ``[B, C, h, w]`` standard normal ``eps'``.
        alpha_bar: ``abar_t`` of the conditioning timestep.
        variant: ``"released"`` (default) or ``"paper"``.

    Returns:
        ``[B, C, h, w]`` in the dtype of ``metric_latent``.
    """
    if variant == "released":
        masked = forward_diffuse(prior_latent, noise, alpha_bar)
    elif variant == "paper":
        masked = noise
    else:
        raise ValueError(f"unknown gate variant {variant!r}; choose from {GATE_VARIANTS}")
    m = latent_gate.to(metric_latent.dtype)
    return m * masked.to(metric_latent.dtype) + (1.0 - m) * metric_latent


def fit_scale_shift(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares ``scale, shift`` with ``scale * pred + shift ~ target`` over ``mask``.

    Solved per image in float64. Fallbacks, each logged: fewer than 2 masked pixels
    -> all finite pixels are used; ``pred`` constant over the used pixels -> scale 0
    and shift = mean of ``target`` there.

    Args:
        pred: ``[B, 1, H, W]`` un-aligned prediction.
        target: ``[B, 1, H, W]`` reference (metres).
        mask: ``[B, 1, H, W]`` bool, pixels to fit on.

    Returns:
        ``scale`` and ``shift``, each ``[B]`` float64.
    """
    if not (pred.shape == target.shape == mask.shape):
        raise ValueError(
            f"shapes differ: pred {tuple(pred.shape)}, target {tuple(target.shape)}, "
            f"mask {tuple(mask.shape)}"
        )
    p_all = pred.detach().double().flatten(1)
    t_all = target.detach().double().flatten(1)
    finite = torch.isfinite(p_all) & torch.isfinite(t_all)
    m_all = mask.flatten(1).bool() & finite
    scales, shifts = [], []
    for i in range(p_all.shape[0]):
        sel = m_all[i]
        if int(sel.sum()) < 2:
            LOGGER.warning(
                "image %d: %d confident pixels for metric recovery; fitting on all pixels",
                i,
                int(sel.sum()),
            )
            sel = finite[i]
        p, t = p_all[i][sel], t_all[i][sel]
        if p.numel() == 0:
            scales.append(p_all.new_tensor(1.0))
            shifts.append(p_all.new_tensor(0.0))
            continue
        p_mean, t_mean = p.mean(), t.mean()
        var = ((p - p_mean) ** 2).mean()
        if float(var) <= 1e-24:
            LOGGER.warning("image %d: sharpened depth is constant; using scale 0", i)
            scales.append(p_all.new_tensor(0.0))
            shifts.append(t_mean)
            continue
        cov = ((p - p_mean) * (t - t_mean)).mean()
        scale = cov / var
        scales.append(scale)
        shifts.append(t_mean - scale * p_mean)
    return torch.stack(scales), torch.stack(shifts)


def apply_scale_shift(pred: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``scale * pred + shift`` per image; ``pred`` ``[B, 1, H, W]``, ``scale``/``shift`` ``[B]``.

    Computed in float64 and returned as float32.
    """
    s = scale.to(pred.device, torch.float64).view(-1, 1, 1, 1)
    b = shift.to(pred.device, torch.float64).view(-1, 1, 1, 1)
    return (pred.double() * s + b).float()


def sds_loss(student_x0: torch.Tensor, prior_x0: torch.Tensor, sigma2: float) -> torch.Tensor:
    """Score-distillation loss from the frozen prior (training step 5).

    ``g = nan_to_num(sigma_t^2 (z_hat - f))`` and
    ``L = 0.5 * mean((z_hat - stopgrad(z_hat - g))^2)``, whose gradient with respect to
    ``z_hat`` is ``g / numel``.

    Args:
        student_x0: ``[B, C, h, w]`` the student's prediction ``z_hat`` (with gradient).
        prior_x0: ``[B, C, h, w]`` the frozen prior's x0 ``f`` on ``q(z_hat, eps'', t)``
            (no gradient).
        sigma2: ``sigma_t^2 = 1 - abar_t`` of the distillation timestep.

    Returns:
        Scalar float32 loss.
    """
    z_hat = student_x0.float()
    g = torch.nan_to_num(sigma2 * (z_hat - prior_x0.detach().float()))
    target = (z_hat - g).detach()
    return 0.5 * F.mse_loss(z_hat, target, reduction="mean")


def reconstruction_loss(
    sharp_depth: torch.Tensor, metric_depth_norm: torch.Tensor, gate: torch.Tensor
) -> torch.Tensor:
    """Noise-aware reconstruction loss (training step 6).

    ``L = sum(e * |(d_hat + 1) / 2 - (d_n + 1) / 2|) / (sum(e) + 1e-8)`` over the batch.

    Args:
        sharp_depth: ``[B, 1, H, W]`` decoded student depth ``d_hat`` (with gradient).
        metric_depth_norm: ``[B, 1, H, W]`` normalised metric depth ``d_n``.
        gate: ``[B, 1, H, W]`` the gate ``e`` (no gradient).

    Returns:
        Scalar float32 loss.
    """
    e = gate.detach().float()
    diff = ((sharp_depth.float() + 1.0) / 2.0 - (metric_depth_norm.float() + 1.0) / 2.0).abs()
    return (e * diff).sum() / (e.sum() + 1e-8)
