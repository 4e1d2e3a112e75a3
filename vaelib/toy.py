"""One-dimensional latent-variable models where log p(x) and the posterior p(z|x) are known exactly.

They let a reader check variational inference against the truth (chapter 4 of the book). Everything is in nats.

``LinearGaussian(a, b, s)``: z ~ N(0, 1), x | z ~ N(a z + b, s^2). Everything has a closed form:

    p(x)    = N(x; b, a^2 + s^2)
    p(z|x)  = N(z; m, v),  v = s^2 / (a^2 + s^2),  m = v a (x - b) / s^2
    ELBO(q) = E_q[log p(x|z)] - KL(q || p(z))            for q = N(mu, sigma^2)
            = log p(x) - KL(q || p(z|x))

``SquareGaussian(s)``: z ~ N(0, 1), x | z ~ N(z^2, s^2). Since d/dz log p(x, z) = z (2 (x - z^2) / s^2 - 1), the
posterior p(z|x) is bimodal exactly when x > s^2 / 2, with modes at +-sqrt(x - s^2 / 2) (and a dip at z = 0);
for x <= s^2 / 2 it has one mode, at 0. No Gaussian q matches a bimodal posterior. The ELBO of q = N(mu, sigma^2) is
a polynomial expectation with a closed form (:meth:`SquareGaussian.elbo`); it is even in mu, and at mu = 0 with
its best sigma it is a local maximum for every x. Below x ~ 1.1 (for s = 0.5) mu = 0 is also the global maximum;
above, the best q sits near one of the two modes, with mean sqrt(x - s^2 / 2 - 3 sigma^2)
(:meth:`SquareGaussian.best_gaussian`).

For any model with a ``log_joint(x, z)`` method: log p(x) and KL(q || p(z|x)) by the trapezoidal rule on a grid of
z (:func:`log_px_quadrature`, :func:`posterior_on_grid`, :func:`kl_to_posterior_quadrature`), and the ELBO by the
Gauss-Hermite quadrature rule, whose nodes follow q (:func:`elbo_gauss_hermite`, :func:`elbo_quadrature`).

Arguments ``x``, ``mu``, ``log_sigma`` may be floats or tensors; they broadcast against each other.
"""
from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)


def _t(v) -> torch.Tensor:
    return v if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=torch.float64)


def log_normal(x, mean, var) -> torch.Tensor:
    """log N(x; mean, var), elementwise, in nats."""
    x, mean, var = _t(x), _t(mean), _t(var)
    return -0.5 * (LOG_2PI + torch.log(var) + (x - mean) ** 2 / var)


def kl_normal(mu1, var1, mu2, var2) -> torch.Tensor:
    """KL( N(mu1, var1) || N(mu2, var2) ) for 1-D Gaussians, elementwise, in nats."""
    mu1, var1, mu2, var2 = _t(mu1), _t(var1), _t(mu2), _t(var2)
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mu1 - mu2) ** 2) / var2 - 1.0)


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive finite number; got {value}")
    return value


class LinearGaussian:
    """z ~ N(0, 1), x | z ~ N(a z + b, s^2): the latent-variable model whose every quantity has a closed form.

    ``a`` (the decoder's slope) must be non-zero; ``s`` (the observation noise's standard deviation) positive.
    """

    def __init__(self, a: float = 2.0, b: float = 0.0, s: float = 1.0):
        a = float(a)
        if a == 0 or not math.isfinite(a):
            raise ValueError(f"a must be a non-zero finite number (the decoder's slope); got {a}")
        self.a, self.b, self.s = a, float(b), _positive("s", s)

    def __repr__(self) -> str:
        return f"LinearGaussian(a={self.a}, b={self.b}, s={self.s})"

    # The model.
    def log_prior(self, z) -> torch.Tensor:
        """log p(z) = log N(z; 0, 1)."""
        return log_normal(z, 0.0, 1.0)

    def log_likelihood(self, x, z) -> torch.Tensor:
        """log p(x|z) = log N(x; a z + b, s^2)."""
        return log_normal(x, self.a * _t(z) + self.b, self.s ** 2)

    def log_joint(self, x, z) -> torch.Tensor:
        """log p(x, z) = log p(x|z) + log p(z)."""
        return self.log_likelihood(x, z) + self.log_prior(z)

    def sample(self, n: int, generator: torch.Generator | None = None):
        """(z, x), each (n,) float64: z from the prior, then x from p(x|z)."""
        if int(n) < 1:
            raise ValueError(f"n must be a positive integer; got {n}")
        z = torch.randn(int(n), generator=generator, dtype=torch.float64)
        x = self.a * z + self.b + self.s * torch.randn(int(n), generator=generator, dtype=torch.float64)
        return z, x

    # Exact inference.
    def log_px(self, x) -> torch.Tensor:
        """log p(x) = log N(x; b, a^2 + s^2): the evidence, in closed form."""
        return log_normal(x, self.b, self.a ** 2 + self.s ** 2)

    def posterior(self, x):
        """The exact posterior p(z|x) = N(mean, std^2): returns (mean, std)."""
        v = self.s ** 2 / (self.a ** 2 + self.s ** 2)
        mean = v * self.a * (_t(x) - self.b) / self.s ** 2
        return mean, torch.full_like(mean, math.sqrt(v))

    # Variational inference with q(z) = N(mu, exp(log_sigma)^2).
    def expected_log_likelihood(self, x, mu, log_sigma) -> torch.Tensor:
        """E_q[log p(x|z)] = -0.5 log(2 pi s^2) - ((x - a mu - b)^2 + a^2 sigma^2) / (2 s^2): the reconstruction term."""
        x, mu, var = _t(x), _t(mu), torch.exp(2 * _t(log_sigma))
        return -0.5 * (LOG_2PI + math.log(self.s ** 2)) - ((x - self.a * mu - self.b) ** 2 + self.a ** 2 * var) / (
            2 * self.s ** 2)

    @staticmethod
    def kl_to_prior(mu, log_sigma) -> torch.Tensor:
        """KL(q || p(z)) = 0.5 (mu^2 + sigma^2 - 1 - log sigma^2): the prior-matching term."""
        mu, log_sigma = _t(mu), _t(log_sigma)
        return 0.5 * (mu ** 2 + torch.exp(2 * log_sigma) - 1.0 - 2 * log_sigma)

    def elbo(self, x, mu, log_sigma) -> torch.Tensor:
        """ELBO(q) = E_q[log p(x|z)] - KL(q || p(z)), in closed form."""
        return self.expected_log_likelihood(x, mu, log_sigma) - self.kl_to_prior(mu, log_sigma)

    def kl_to_posterior(self, x, mu, log_sigma) -> torch.Tensor:
        """KL(q || p(z|x)), in closed form: the gap log p(x) - ELBO(q)."""
        m, std = self.posterior(x)
        return kl_normal(mu, torch.exp(2 * _t(log_sigma)), m, std ** 2)


class SquareGaussian:
    """z ~ N(0, 1), x | z ~ N(z^2, s^2): for x > s^2 / 2 the posterior has two modes, at +-sqrt(x - s^2 / 2).

    log p(x) has no closed form: use the ``*_quadrature`` functions of this module with it. The ELBO of a Gaussian
    q does (:meth:`elbo`), and so does its maximiser (:meth:`best_gaussian`).
    """

    def __init__(self, s: float = 0.5):
        self.s = _positive("s", s)

    def __repr__(self) -> str:
        return f"SquareGaussian(s={self.s})"

    def log_joint(self, x, z) -> torch.Tensor:
        """log p(x, z) = log N(x; z^2, s^2) + log N(z; 0, 1)."""
        z = _t(z)
        return log_normal(x, z ** 2, self.s ** 2) + log_normal(z, 0.0, 1.0)

    def posterior_modes(self, x) -> torch.Tensor:
        """The non-negative mode of p(z|x): sqrt(x - s^2 / 2) where x > s^2 / 2 (then -sqrt(x - s^2 / 2) is the
        other), else 0 (the only mode). Elementwise."""
        return torch.sqrt(torch.clamp(_t(x) - self.s ** 2 / 2, min=0.0))

    def elbo(self, x, mu, log_sigma) -> torch.Tensor:
        """ELBO(q) = E_q[log p(x, z)] + H[q] for q = N(mu, sigma^2), in closed form, in nats.

        With E_q[z^2] = mu^2 + sigma^2 and E_q[z^4] = mu^4 + 6 mu^2 sigma^2 + 3 sigma^4:
        ELBO = -0.5 log(2 pi s^2) + 0.5 + log sigma - (mu^2 + sigma^2) / 2
               - (x^2 - 2 x (mu^2 + sigma^2) + mu^4 + 6 mu^2 sigma^2 + 3 sigma^4) / (2 s^2).
        Broadcasts; differentiable in all three arguments.
        """
        x, mu, log_sigma = _t(x), _t(mu), _t(log_sigma)
        m2, v = mu ** 2, torch.exp(2 * log_sigma)
        sq = x ** 2 - 2 * x * (m2 + v) + m2 ** 2 + 6 * m2 * v + 3 * v ** 2          # E_q[(x - z^2)^2]
        return -0.5 * math.log(2 * math.pi * self.s ** 2) + 0.5 + log_sigma - (m2 + v) / 2 - sq / (2 * self.s ** 2)

    def best_gaussian(self, x):
        """The Gaussian q = N(mu, sigma^2) with the largest ELBO for each x, from the stationarity conditions.

        Returns ``(mu, log_sigma, elbo)``, float64 tensors shaped like ``x`` (ELBO in nats), with mu >= 0: the
        ELBO is even in mu, so (-mu, sigma) is as good. Write v = sigma^2 and m = mu^2; two kinds of stationary
        point compete.

        - mu = 0, with 6 v^2 - (2x - s^2) v - s^2 = 0 (one positive root). There the Hessian in (mu, log sigma) is
          diagonal, diag(-1 / v, -2 - 12 v^2 / s^2): a local maximum for every x.
        - mu^2 = x - s^2 / 2 - 3 v > 0, with 12 v^2 - (4x - 2 s^2) v + s^2 = 0, which has real roots for
          x >= s^2 / 2 + sqrt(3) s. The smaller root is a local maximum (the Hessian in (m, v) is negative
          definite exactly when v < s / sqrt(12)); the larger one a saddle point.

        The better of the two is returned; the second wins only above a threshold x (about 1.1 for s = 0.5).
        """
        x = _t(x).double()
        s2 = self.s ** 2
        zero = torch.zeros_like(x)
        v0 = ((2 * x - s2) + torch.sqrt((2 * x - s2) ** 2 + 24 * s2)) / 12
        ls0 = 0.5 * torch.log(v0)
        elbo0 = self.elbo(x, zero, ls0)
        b = 4 * x - 2 * s2
        disc = b ** 2 - 48 * s2
        ok = (disc >= 0) & (b > 0)
        v1 = 2 * s2 / torch.where(ok, b + torch.sqrt(torch.clamp(disc, min=0.0)), torch.ones_like(x))
        m2 = x - s2 / 2 - 3 * v1            # the smaller root, written without cancellation: v1 = 2 s^2 / (b + sqrt)
        ok = ok & (m2 > 0)
        mu1 = torch.sqrt(torch.clamp(m2, min=0.0))
        ls1 = 0.5 * torch.log(v1)
        elbo1 = torch.where(ok, self.elbo(x, mu1, ls1), torch.full_like(x, -math.inf))
        pick = elbo1 > elbo0
        return torch.where(pick, mu1, zero), torch.where(pick, ls1, ls0), torch.where(pick, elbo1, elbo0)


def _grid(lo: float, hi: float, n: int) -> torch.Tensor:
    if not hi > lo or int(n) < 3:
        raise ValueError(f"need lo < hi and n >= 3 grid points; got lo={lo}, hi={hi}, n={n}")
    return torch.linspace(float(lo), float(hi), int(n), dtype=torch.float64)


def log_px_quadrature(model, x, lo: float = -12.0, hi: float = 12.0, n: int = 20001):
    """log p(x) = log integral p(x, z) dz by the trapezoidal rule on a grid of n points of [lo, hi] (in log space),
    in nats.

    ``x`` a float (returns a float) or a 1-D tensor of observations (returns a tensor of the same shape).
    """
    z = _grid(lo, hi, n)
    w = torch.full_like(z, (hi - lo) / (n - 1))
    w[0] = w[-1] = w[0] / 2
    if isinstance(x, torch.Tensor) and x.dim() > 0:
        lj = model.log_joint(x.double().reshape(-1, 1), z)                # (N, n)
        return torch.logsumexp(lj + torch.log(w), -1).reshape(x.shape)
    return float(torch.logsumexp(model.log_joint(float(x), z) + torch.log(w), 0))


def posterior_on_grid(model, x: float, lo: float = -12.0, hi: float = 12.0, n: int = 20001):
    """(z, density): the exact posterior p(z|x) = p(x, z) / p(x) evaluated on a grid of n points of [lo, hi]."""
    z = _grid(lo, hi, n)
    return z, torch.exp(model.log_joint(float(x), z) - log_px_quadrature(model, x, lo, hi, n))


def elbo_gauss_hermite(model, x, mu, log_sigma, n: int = 101) -> torch.Tensor:
    """ELBO(q) = E_q[log p(x, z)] + H[q] for q = N(mu, sigma^2), by Gauss-Hermite quadrature with n nodes, in nats.

    H[q] = 0.5 log(2 pi e sigma^2) is the entropy of q. ``x``, ``mu``, ``log_sigma`` broadcast against each other;
    differentiable in all three (so it can be maximised by gradient ascent). A quadrature rule, not a grid: its n
    nodes sit at mu + sigma t_i, where t_i are the roots of the probabilists' Hermite polynomial He_n, so they
    follow q. Exact when the log-joint is a polynomial in z of degree < 2n.
    """
    import numpy as np

    t, w = np.polynomial.hermite_e.hermegauss(int(n))      # nodes/weights for the weight exp(-t^2 / 2)
    t = torch.as_tensor(t)
    w = torch.as_tensor(w / math.sqrt(2 * math.pi))
    x, mu, log_sigma = _t(x), _t(mu), _t(log_sigma)
    z = mu.unsqueeze(-1) + torch.exp(log_sigma).unsqueeze(-1) * t            # (..., n)
    expected = (w * model.log_joint(x.unsqueeze(-1), z)).sum(-1)
    return expected + 0.5 * (LOG_2PI + 1.0) + log_sigma


def elbo_quadrature(model, x: float, mu: float, log_sigma: float, n: int = 101) -> float:
    """:func:`elbo_gauss_hermite` for one observation and one q, as a float (nats)."""
    return float(elbo_gauss_hermite(model, float(x), float(mu), float(log_sigma), n))


def kl_to_posterior_quadrature(model, x: float, mu: float, log_sigma: float,
                               lo: float | None = None, hi: float | None = None, n: int = 20001) -> float:
    """KL(q || p(z|x)) = integral q log(q / p(z|x)) dz by the trapezoidal rule, for q = N(mu, sigma^2), in nats.

    The posterior is p(x, z) / p(x) with p(x) from :func:`log_px_quadrature` on the same grid. By default the grid
    covers [-12, 12] and 15 standard deviations of q on either side of mu.
    """
    sigma = math.exp(float(log_sigma))
    lo = min(-12.0, float(mu) - 15 * sigma) if lo is None else float(lo)
    hi = max(12.0, float(mu) + 15 * sigma) if hi is None else float(hi)
    z = _grid(lo, hi, n)
    log_q = log_normal(z, float(mu), sigma ** 2)
    log_post = model.log_joint(float(x), z) - log_px_quadrature(model, x, lo, hi, n)
    f = torch.exp(log_q) * (log_q - log_post)
    return float(torch.trapezoid(f, z))
