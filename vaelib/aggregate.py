"""The aggregate posterior of a Gaussian encoder, and how far its dimensions are from independent, in nats.

For N examples x_1..x_N with encoder posteriors q(z|x_n) = N(mu_n, diag exp(logvar_n)), the aggregate posterior is
their mixture with equal weights,

    q(z) = (1/N) sum_n q(z | x_n),        q_j(z_j) = (1/N) sum_n q(z_j | x_n)   (its marginal in dimension j).

Its *total correlation* (Watanabe, 1960) is the KL divergence from the product of its marginals,

    TC(q) = KL( q(z) || prod_j q_j(z_j) ) = E_{z ~ q(z)}[ log q(z) - sum_j log q_j(z_j) ]  >= 0,

zero exactly when the dimensions of z are independent under q(z). Chen et al. (2018) use it to measure how
"disentangled" a VAE's code is. Here log q(z) and every log q_j(z_j) are computed exactly, as log-sum-exps over the
N components (the full-dataset estimate), so the only randomness in :func:`total_correlation` is the draws of z.

The mixture is that of the N examples given: with narrow posteriors in many dimensions, a finite set of examples
makes q(z) lumpy (N separate bumps), and its total correlation grows towards what the examples' identity reveals
about z, even when the dimensions of the aggregate of the whole data distribution are independent. Compare with
the same codes shuffled across examples dimension by dimension (``shuffle=True``), which keeps every marginal and
the lumpiness and destroys the dependence between dimensions.

:func:`gaussian_total_correlation` is the closed form for a Gaussian, -1/2 log det R (R the correlation matrix);
with :func:`aggregate_covariance` it measures only linear dependence between the dimensions of q(z).
"""
from __future__ import annotations

import math

import torch

from . import checks

LOG_2PI = math.log(2 * math.pi)
_CHUNK_ELEMENTS = 1 << 22  # log-densities held at once (4M float64 values: 32 MB)


def _gaussians(mu, logvar) -> tuple[torch.Tensor, torch.Tensor]:
    """mu, logvar checked: float tensors of the same shape (N, D), N, D >= 1, finite; as float64."""
    for name, t in (("mu", mu), ("logvar", logvar)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a float tensor of shape (N, D); got "
                            f"{t.dtype if isinstance(t, torch.Tensor) else type(t).__name__}")
    if mu.dim() != 2 or mu.shape != logvar.shape or mu.shape[0] == 0 or mu.shape[1] == 0:
        raise ValueError(f"mu and logvar must have the same shape (N, D) with N, D >= 1, one row per example; got "
                         f"{tuple(mu.shape)} and {tuple(logvar.shape)}")
    if not (torch.isfinite(mu).all() and torch.isfinite(logvar).all()):
        raise ValueError("mu and logvar must be finite (no NaN or inf)")
    return mu.detach().double(), logvar.detach().double()


def aggregate_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                          marginals: bool = False) -> torch.Tensor:
    """log q(z) of the mixture (1/N) sum_n N(mu_n, diag exp(logvar_n)), in nats, exactly (a log-sum-exp over n).

    z: (M, D) points; mu, logvar: (N, D), one row per mixture component (per example).
    Returns (M,) log q(z); with ``marginals=True``, (M, D): log q_j(z_j) of each dimension's marginal mixture.
    float64.
    """
    mu, logvar = _gaussians(mu, logvar)
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != mu.shape[1]:
        raise ValueError(f"z must be a tensor of shape (M, {mu.shape[1]}); got "
                         f"{tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__}")
    z = z.detach().to(mu.device, torch.float64)
    n, d = mu.shape
    inv_var = torch.exp(-logvar)
    chunk = max(1, _CHUNK_ELEMENTS // (n * d))
    out = []
    for zc in z.split(chunk):
        # log N(z_mj; mu_nj, sigma_nj^2) for every point m, component n, dimension j: (chunk, N, D)
        per_dim = -0.5 * (LOG_2PI + logvar + (zc[:, None, :] - mu) ** 2 * inv_var)
        summed = per_dim if marginals else per_dim.sum(-1)
        out.append(torch.logsumexp(summed, dim=1) - math.log(n))
    return torch.cat(out)


def total_correlation(mu: torch.Tensor, logvar: torch.Tensor, samples: int = 1,
                      generator: torch.Generator | None = None, shuffle: bool = False) -> torch.Tensor:
    """Monte Carlo terms of the total correlation of the aggregate posterior q(z) = (1/N) sum_n q(z | x_n), in nats.

    Draws ``samples`` points from each component q(z | x_n) (so N * samples draws from q(z), equally many from each
    component) and returns, for each draw, log q(z) - sum_j log q_j(z_j), shape (N * samples,). Their mean is an
    unbiased estimate of TC(q) (the densities are exact, see the module's docstring); their standard deviation over
    sqrt(N * samples) is a (conservative) standard error.

    mu, logvar: (N, D), the encoder's outputs for N examples. ``shuffle=True`` first permutes the rows of each
    dimension independently (with ``generator``): the same marginals, the dependence between dimensions removed,
    the baseline against which a finite N's lumpiness can be judged.
    """
    mu, logvar = _gaussians(mu, logvar)
    checks.positive("samples", samples, integer=True)
    n, d = mu.shape
    if shuffle:
        idx = torch.stack([torch.randperm(n, generator=generator) for _ in range(d)], dim=1).to(mu.device)
        mu, logvar = mu.gather(0, idx), logvar.gather(0, idx)
    eps = torch.randn((samples, n, d), generator=generator, dtype=torch.float64).to(mu.device)
    z = (mu + torch.exp(0.5 * logvar) * eps).reshape(samples * n, d)
    joint = aggregate_log_density(z, mu, logvar)
    product = aggregate_log_density(z, mu, logvar, marginals=True).sum(-1)
    return joint - product


def aggregate_covariance(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The exact covariance (D, D) of the mixture (1/N) sum_n N(mu_n, diag exp(logvar_n)), float64:
    the covariance of the means over the N examples (divided by N) plus the diagonal of the mean variance."""
    mu, logvar = _gaussians(mu, logvar)
    centred = mu - mu.mean(0)
    return centred.T @ centred / mu.shape[0] + torch.diag(torch.exp(logvar).mean(0))


def gaussian_total_correlation(cov: torch.Tensor) -> float:
    """Total correlation of a Gaussian with covariance ``cov`` (D, D), in nats: -1/2 log det R, where
    R = diag(cov)^(-1/2) cov diag(cov)^(-1/2) is its correlation matrix. Zero when ``cov`` is diagonal."""
    if not isinstance(cov, torch.Tensor) or cov.dim() != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] == 0:
        raise ValueError(f"cov must be a square (D, D) tensor; got "
                         f"{tuple(cov.shape) if isinstance(cov, torch.Tensor) else type(cov).__name__}")
    cov = cov.detach().double()
    if not torch.isfinite(cov).all() or not torch.allclose(cov, cov.T):
        raise ValueError("cov must be finite and symmetric")
    scale = cov.diagonal().rsqrt()
    corr = cov * scale[:, None] * scale[None, :]
    chol, info = torch.linalg.cholesky_ex(corr)
    if info != 0 or not torch.isfinite(scale).all():
        raise ValueError("cov must be positive definite")
    return float(-chol.diagonal().log().sum())
