"""The aggregate posterior of a VAE and the split of its KL term (chapters 6 and 7).

The encoder's Gaussians q(z|x_n) = N(mu_n, diag exp(logvar_n)), averaged over N data points, make the *aggregate
posterior*, a mixture of N Gaussians,

    q(z) = (1/N) sum_n N(z; mu_n, diag exp(logvar_n)).

The ELBO's KL term, averaged over the same data, splits into two parts (Hoffman and Johnson, 2016):

    (1/N) sum_n KL(q(z|x_n) || p(z)) = I_q(n; z) + KL(q(z) || p(z)),

where I_q(n; z) is the mutual information between the data index n (uniform over the N points) and the code
z ~ q(z|x_n). :func:`aggregate_kl` returns the three numbers: the left side in closed form, KL(q(z) || p(z)) by Monte
Carlo over z ~ q(z) (log q(z) by log-sum-exp over the mixture), and I_q as their difference. Since n takes N values,
0 <= I_q <= log N: with N data points no estimate can exceed log N nats, whatever the model.

The same mixture also measures how far the code's dimensions are from independent. Its *total correlation*
(Watanabe, 1960) is the KL divergence from the product of its marginals q_j(z_j) = (1/N) sum_n q(z_j | x_n),

    TC(q) = KL( q(z) || prod_j q_j(z_j) ) = E_{z ~ q(z)}[ log q(z) - sum_j log q_j(z_j) ]  >= 0,

zero exactly when the dimensions of z are independent under q(z); Chen et al. (2018) use it to measure how
"disentangled" a VAE's code is. :func:`total_correlation` computes log q(z) and every log q_j(z_j) exactly, as
log-sum-exps over the N components (the full-dataset estimate), so its only randomness is the draws of z. With narrow
posteriors in many dimensions a finite set of examples makes q(z) lumpy (N separate bumps), and its total correlation
grows towards what the examples' identity reveals about z, even when the dimensions of the aggregate of the whole
data distribution are independent: compare with the same codes shuffled across examples dimension by dimension
(``shuffle=True``), which keeps every marginal and the lumpiness and destroys the dependence between dimensions.
:func:`gaussian_total_correlation` is the closed form for a Gaussian, -1/2 log det R (R the correlation matrix);
with :func:`aggregate_covariance` it measures only the linear dependence between the dimensions of q(z).

Shapes: ``mu`` and ``logvar`` are (N, D), points ``z`` are (M, D). Everything is in nats, computed in float64.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from . import checks
from .losses import gaussian_kl

#: At most this many (point, component) pairs are held in memory at once (float64: 64 MiB).
PAIRS_PER_CHUNK = 2 ** 23


def _params(mu, logvar) -> tuple[torch.Tensor, torch.Tensor]:
    """mu, logvar as float64 (N, D) tensors on the CPU; TypeError or ValueError naming what was expected otherwise."""
    mu, logvar = torch.as_tensor(mu), torch.as_tensor(logvar)
    if not (mu.is_floating_point() and logvar.is_floating_point()):
        raise TypeError(f"mu and logvar must be float tensors of shape (N, D); got {mu.dtype} and {logvar.dtype}")
    if mu.dim() != 2 or mu.shape[0] == 0 or mu.shape[1] == 0 or logvar.shape != mu.shape:
        raise ValueError("mu and logvar must be float tensors of the same shape (N, D) with N, D >= 1 (one encoder "
                         f"Gaussian per data point); got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    mu, logvar = mu.detach().to("cpu", torch.float64), logvar.detach().to("cpu", torch.float64)
    if not (torch.isfinite(mu).all() and torch.isfinite(logvar).all()):
        raise ValueError("mu and logvar must be finite numbers (no NaN or inf)")
    return mu, logvar


def _log_mixture(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log q(z) for float64 z (M, D) and checked mu, logvar (N, D); (M,) nats.

    Each component's log-density is a quadratic in z: with iv = exp(-logvar),
    log N(z; mu_n, diag 1/iv_n) - log N = sum_j [-iv_nj z_j^2 / 2 + mu_nj iv_nj z_j] + c_n, so all M x N of them are
    one matrix product [z^2, z, 1] (M, 2D+1) @ H^T (2D+1, N), in float64 (the expanded square loses about 1e-16 of
    z^2 iv, far below what matters here); then a log-sum-exp over the N components, chunk by chunk.
    """
    n, d = mu.shape
    inv_var = torch.exp(-logvar)                                                 # (N, D)
    c = (-0.5 * (d * math.log(2 * math.pi) + logvar.sum(1)) - math.log(n)       # normalisers and the weight 1/N
         - 0.5 * (mu ** 2 * inv_var).sum(1))
    h = torch.cat([-0.5 * inv_var, mu * inv_var, c[:, None]], 1)                 # (N, 2D+1)
    out = []
    for zc in z.split(max(1, PAIRS_PER_CHUNK // n)):
        log_comp = torch.cat([zc ** 2, zc, torch.ones(len(zc), 1, dtype=zc.dtype)], 1) @ h.T   # (m, N)
        top = log_comp.max(1, keepdim=True).values
        out.append(log_comp.sub_(top).exp_().sum(1).log_() + top[:, 0])
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def log_aggregate_posterior(z, mu, logvar, marginals: bool = False) -> torch.Tensor:
    """log q(z) = log (1/N) sum_n N(z; mu_n, diag exp(logvar_n)), the aggregate posterior's log-density, in nats.

    z: (M, D) points; mu, logvar: (N, D), the encoder's outputs for N data points. Returns (M,) float64; with
    ``marginals=True``, (M, D): log q_j(z_j) of each dimension's marginal mixture (1/N) sum_n N(z_j; mu_nj, ...).
    The sum over the mixture is a log-sum-exp, computed in chunks of points so that memory stays bounded.
    """
    mu, logvar = _params(mu, logvar)
    z = torch.as_tensor(z)
    if z.dim() != 2 or z.shape[1] != mu.shape[1]:
        raise ValueError(f"z must have shape (M, {mu.shape[1]}) (points of the {mu.shape[1]}-D latent space); got "
                         f"{tuple(z.shape)}")
    z = z.detach().to("cpu", torch.float64)
    if not torch.isfinite(z).all():
        raise ValueError("z must be finite numbers")
    if marginals:  # each dimension's marginal is a 1-D mixture of the same N components
        return torch.stack([_log_mixture(z[:, j:j + 1], mu[:, j:j + 1], logvar[:, j:j + 1])
                            for j in range(z.shape[1])], dim=1)
    return _log_mixture(z, mu, logvar)


def log_standard_normal(z) -> torch.Tensor:
    """log N(z; 0, I) for z (M, D), in nats, (M,) float64."""
    z = torch.as_tensor(z).detach().to("cpu", torch.float64)
    return -0.5 * (z ** 2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


def sample_aggregate_posterior(mu, logvar, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n draws z ~ q(z): a data index uniform over the N points, then z = mu + sigma * eps. Returns (n, D) float64."""
    mu, logvar = _params(mu, logvar)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    idx = torch.randint(len(mu), (n,), generator=generator)
    eps = torch.randn(n, mu.shape[1], generator=generator, dtype=torch.float64)
    return mu[idx] + torch.exp(0.5 * logvar[idx]) * eps


class KLDecomposition(NamedTuple):
    """The averaged KL term of the ELBO and its two parts, in nats (see :func:`aggregate_kl`)."""

    average_kl: float          #: (1/N) sum_n KL(q(z|x_n) || p(z)), exact
    mutual_information: float  #: I_q(n; z) = average_kl - marginal_kl, between 0 and log N
    marginal_kl: float         #: KL(q(z) || p(z)), Monte Carlo estimate
    marginal_kl_se: float      #: standard error of the Monte Carlo estimate (also that of mutual_information)
    log_n: float               #: log N, the most mutual_information can be with N data points
    n_samples: int             #: Monte Carlo draws z ~ q(z)


def aggregate_kl(mu, logvar, *, n_samples: int = 10_000, generator: torch.Generator | None = None) -> KLDecomposition:
    """Split the averaged KL term, (1/N) sum_n KL(q(z|x_n) || N(0, I)) = I_q(n; z) + KL(q(z) || N(0, I)).

    mu, logvar: (N, D), the encoder's Gaussians of N data points (the training set or a large subset of it).
    The average KL is exact (closed form per point, :func:`vaelib.gaussian_kl`); KL(q(z) || p(z)) is the mean of
    log q(z) - log p(z) over ``n_samples`` draws z ~ q(z) (:func:`sample_aggregate_posterior`, seeded by
    ``generator``), with log q(z) by :func:`log_aggregate_posterior` over all N components; I_q is the difference.
    The estimate refers to the empirical mixture of these N points: its I_q can never exceed log N.
    """
    mu, logvar = _params(mu, logvar)
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2; got {n_samples!r}")
    average = gaussian_kl(mu, logvar).mean().item()
    z = sample_aggregate_posterior(mu, logvar, n_samples, generator)
    ratio = _log_mixture(z, mu, logvar) - log_standard_normal(z)
    marginal = ratio.mean().item()
    se = ratio.std().item() / math.sqrt(n_samples)
    return KLDecomposition(average_kl=average, mutual_information=average - marginal, marginal_kl=marginal,
                           marginal_kl_se=se, log_n=math.log(len(mu)), n_samples=n_samples)


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
    mu, logvar = _params(mu, logvar)
    checks.positive("samples", samples, integer=True)
    n, d = mu.shape
    if shuffle:
        idx = torch.stack([torch.randperm(n, generator=generator) for _ in range(d)], dim=1).to(mu.device)
        mu, logvar = mu.gather(0, idx), logvar.gather(0, idx)
    eps = torch.randn((samples, n, d), generator=generator, dtype=torch.float64).to(mu.device)
    z = (mu + torch.exp(0.5 * logvar) * eps).reshape(samples * n, d)
    joint = _log_mixture(z, mu, logvar)
    product = log_aggregate_posterior(z, mu, logvar, marginals=True).sum(-1)
    return joint - product


def aggregate_covariance(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The exact covariance (D, D) of the mixture (1/N) sum_n N(mu_n, diag exp(logvar_n)), float64:
    the covariance of the means over the N examples (divided by N) plus the diagonal of the mean variance."""
    mu, logvar = _params(mu, logvar)
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
