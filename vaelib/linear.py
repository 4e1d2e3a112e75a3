"""Linear autoencoders and PCA (chapter 2 of the book): a linear autoencoder trained on squared error spans the
principal subspace (Baldi and Hornik, 1989).

Shapes: data ``x`` is ``(N, D)`` (images are flattened); a code has ``k`` dimensions. Errors are squared errors
summed over the D pixels and averaged over examples (pixel values in [0, 1], so the unit is "squared intensity").

A linear autoencoder with the mean image subtracted (what the best biases do) reconstructs
``x_hat = mean + Dec Enc (x - mean)``, Enc (k, D), Dec (D, k). Its mean squared error depends on the data only
through the covariance C = (1/N) sum (x - mean)(x - mean)^T:

    (1/N) sum ||x - x_hat||^2 = tr(C) - 2 tr(Dec Enc C) + tr(Dec Enc C Enc^T Dec^T),

which :func:`fit_linear_autoencoder` minimises, so that a step costs O(k D^2) whatever N is.
"""
from __future__ import annotations

import torch
from torch import nn


def _flat(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(f"expected data as a tensor of shape (N, D) or (N, C, H, W); got {getattr(x, 'shape', x)!r}")
    return x.reshape(x.shape[0], -1).double()


def _check_k(k: int, d: int) -> int:
    if not 1 <= int(k) <= d:
        raise ValueError(f"the number of components k must be an integer in [1, {d}]; got {k}")
    return int(k)


def covariance(x: torch.Tensor):
    """(mean (D,), covariance C (D, D)) of the rows of x, with the 1/N convention, in float64."""
    x = _flat(x)
    mean = x.mean(0)
    xc = x - mean
    return mean, xc.T @ xc / x.shape[0]


def pca(x: torch.Tensor, k: int):
    """The top-k principal components of the rows of x, from the SVD of the centred data.

    Returns (mean (D,), components (k, D) with orthonormal rows, variances (k,) in decreasing order), float64.
    """
    x = _flat(x)
    k = _check_k(k, x.shape[1])
    mean = x.mean(0)
    _, s, vt = torch.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:k], s[:k] ** 2 / x.shape[0]


def pca_reconstruct(x: torch.Tensor, mean: torch.Tensor, components: torch.Tensor) -> torch.Tensor:
    """Project x (N, D) onto the affine subspace mean + span(components): mean + (x - mean) V^T V."""
    xc = _flat(x) - mean
    return mean + xc @ components.T @ components


def squared_error(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """(1/N) sum_n ||x_n - x_hat_n||^2: squared error summed over the D pixels, averaged over the N examples."""
    return float(((_flat(x) - _flat(x_hat)) ** 2).sum(1).mean())


def principal_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The principal angles (radians, ascending) between the column spaces of a (D, k) and b (D, m).

    With orthonormal bases Qa, Qb (QR decompositions), the cosines of the angles are the singular values of
    Qa^T Qb. All angles are 0 exactly when the two spaces coincide.
    """
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"expected two bases of shape (D, k) and (D, m); got {tuple(a.shape)} and {tuple(b.shape)}")
    qa, _ = torch.linalg.qr(a)
    qb, _ = torch.linalg.qr(b)
    cos = torch.linalg.svdvals(qa.T @ qb).clamp(-1.0, 1.0)
    return torch.arccos(cos)


class LinearAutoencoder(nn.Module):
    """x_hat = mean + Dec(Enc(x - mean)), with Enc: R^D -> R^k and Dec: R^k -> R^D linear maps (no biases).

    ``mean`` is the data's mean image (D,), which is what the optimal biases of a linear autoencoder amount to.
    Weights start random (scale 1/sqrt(D)), in ``dtype`` (float32 by default: fast enough on a CPU).
    """

    def __init__(self, in_dim: int, code_dim: int, mean: torch.Tensor | None = None, seed: int = 0,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.in_dim, self.code_dim = int(in_dim), int(code_dim)
        if self.in_dim < 1 or self.code_dim < 1:
            raise ValueError(f"in_dim and code_dim must be positive integers; got {in_dim}, {code_dim}")
        gen = torch.Generator().manual_seed(seed)
        scale = self.in_dim ** -0.5
        self.enc = nn.Parameter(scale * torch.randn(self.code_dim, self.in_dim, generator=gen, dtype=dtype))
        self.dec = nn.Parameter(scale * torch.randn(self.in_dim, self.code_dim, generator=gen, dtype=dtype))
        self.register_buffer("mean", torch.zeros(self.in_dim, dtype=dtype) if mean is None
                             else torch.as_tensor(mean, dtype=dtype).reshape(self.in_dim))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) -> codes (N, k)."""
        return (_flat(x).to(self.enc.dtype) - self.mean) @ self.enc.T

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """codes (N, k) -> reconstructions (N, D)."""
        return self.mean + h @ self.dec.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def error_from_covariance(self, cov: torch.Tensor) -> torch.Tensor:
        """tr(C) - 2 tr(M C) + tr(M C M^T) with M = Dec Enc: the mean squared error on data of covariance C."""
        cov = cov.to(self.enc.dtype)
        ec = self.enc @ cov                                  # (k, D)
        return torch.trace(cov) - 2 * (self.dec * ec.T).sum() + ((self.dec.T @ self.dec) * (ec @ self.enc.T)).sum()


def fit_linear_autoencoder(x: torch.Tensor, code_dim: int, *, steps: int = 1000, lr: float = 1e-2,
                           lr_end: float | None = None, seed: int = 0, record_every: int = 50,
                           dtype: torch.dtype = torch.float32):
    """Train a :class:`LinearAutoencoder` on x (N, D) by full-batch Adam on the mean squared error.

    The learning rate decays geometrically from ``lr`` to ``lr_end`` (default ``lr / 10``) over the ``steps``:
    with a constant rate, Adam keeps jittering around the minimum instead of settling in it.

    The error is evaluated through the covariance (see the module docstring), which equals the per-example
    average exactly, so a step costs O(k D^2) whatever N is. Returns (model, history): ``history`` holds
    ``step``, ``error`` and ``decoder`` (a copy of Dec, (D, k)) every ``record_every`` steps and after the last.
    """
    if int(steps) < 1 or int(record_every) < 1:
        raise ValueError(f"steps and record_every must be positive integers; got {steps}, {record_every}")
    lr_end = lr / 10 if lr_end is None else lr_end
    if not (lr > 0 and lr_end > 0):
        raise ValueError(f"lr and lr_end must be positive; got {lr}, {lr_end}")
    mean, cov = covariance(x)
    model = LinearAutoencoder(cov.shape[0], code_dim, mean=mean, seed=seed, dtype=dtype)
    cov = cov.to(dtype)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = {"step": [], "error": [], "decoder": []}
    for step in range(1, int(steps) + 1):
        for group in opt.param_groups:
            group["lr"] = lr * (lr_end / lr) ** ((step - 1) / max(1, int(steps) - 1))
        loss = model.error_from_covariance(cov)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % int(record_every) == 0 or step == int(steps):
            history["step"].append(step)
            history["error"].append(float(model.error_from_covariance(cov).detach()))
            history["decoder"].append(model.dec.detach().clone())
    return model, history
