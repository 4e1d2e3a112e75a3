"""Losses and likelihood bounds, all per example and in nats (natural-log units).

Notation: q(z|x) = N(mu, diag exp(logvar)) is the encoder, p(z) = N(0, I) the prior, p(x|z) the decoder.

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))  <=  log p(x)
    free bits (a training objective, per mini-batch): sum_j max(lambda, mean_batch KL_j) in place of the KL
    IWAE_k(x) = E[log (1/k) sum_i p(x, z_i) / q(z_i|x)],  z_i ~ q(z|x);  ELBO = IWAE_1 <= IWAE_k <= log p(x)

A conditional model (``CVAE``) takes class labels ``y`` everywhere: q(z|x,y), p(x|z,y), and the bounds are on
log p(x|y). Pass them as ``y=`` (class indices (B,) or float rows (B, n_classes)); the functions refuse a CVAE
without labels, and labels for a model that takes none.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import checks

LOG_2PI = math.log(2 * math.pi)


def _data(model, x, name: str = "x") -> torch.Tensor:
    """``x`` checked as ``fit`` checks its data and flattened to (B, features): a float tensor of the shape the model
    takes, without NaN or inf, in [0, 1] under a Bernoulli decoder. Raises TypeError or ValueError."""
    who = type(model).__name__
    if hasattr(model, "flatten"):           # vaelib's models: the shape check names in_dim
        flat = model.flatten(x)
    else:                                    # a model written by hand (chapter 2): any (B, ...) float tensor
        checks.batch(x, who)
        flat = x.reshape(x.shape[0], -1)
    checks.values(flat, getattr(model, "likelihood", None), name)
    return flat


def _labels(model, y, flat: torch.Tensor, what: str):
    """The labels checked against the model, as float rows (B, n_classes) on the data's device (None for a model
    that takes no labels): a conditional model needs them, any other refuses them (ValueError)."""
    if getattr(model, "conditional", False):
        try:
            return model.condition(y, flat)
        except ValueError as err:
            raise ValueError(f"{what}: {err}") from None
    if y is not None:
        raise ValueError(f"{what}: a {type(model).__name__} is not conditional and takes no labels y (a CVAE does)")
    return None


def _encode(model, x: torch.Tensor, y):
    """q's parameters (mu, logvar) given x, and the labels for a conditional model (y not None)."""
    return model.encode(x) if y is None else model.encode(x, y)


def _decode(model, z: torch.Tensor, y):
    """The decoder's parameters given z, and the labels for a conditional model (y not None)."""
    return model.decode(z) if y is None else model.decode(z, y)


def _require_vae(model, what: str) -> None:
    if not callable(getattr(model, "reparameterize", None)):
        raise TypeError(f"{what} needs a VAE (an encoder q(z|x) that returns (mu, logvar)); got a "
                        f"{type(model).__name__}" + (": for an Autoencoder use reconstruction_loss"
                                                     if callable(getattr(model, "encode", None)) else ""))


def log_likelihood(model, decoded: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) summed over pixels, shape (B,), in nats.

    ``decoded`` is what ``model.decode(z)`` returned, (B, in_dim): Bernoulli logits, or the Gaussian mean
    (with the model's learned ``decoder_logvar``). ``x`` is (B, in_dim) or (B, C, H, W) with the same B and
    C*H*W = in_dim, in [0, 1] for a Bernoulli decoder (anything else raises ValueError).
    """
    if not isinstance(decoded, torch.Tensor) or decoded.dim() != 2:
        got = tuple(decoded.shape) if isinstance(decoded, torch.Tensor) else type(decoded).__name__
        raise ValueError(f"decoded must be the decoder's output, shape (B, in_dim); got {got}")
    in_dim = getattr(model, "in_dim", decoded.shape[1])
    flat = _data(model, x)
    if decoded.shape[1] != in_dim or flat.shape != decoded.shape:
        raise ValueError(f"x must hold one image per row of decoded: decoded has shape {tuple(decoded.shape)} "
                         f"(the model's in_dim is {in_dim}), x has shape {tuple(x.shape)}")
    return _log_likelihood(model, decoded, flat)


def _log_likelihood(model, decoded: torch.Tensor, x: torch.Tensor, batch_sum: bool = False) -> torch.Tensor:
    """log_likelihood without checks: x already (B, in_dim) like decoded (the trainer's per-batch path).

    ``batch_sum=True``: summed over the batch too, a scalar: all that a training step needs. The binary cross-entropy
    then reduces inside its own kernel, and its backward multiplies by one number instead of a (B, in_dim) expansion
    of the per-example gradients; the gradient is the same, bit for bit. (The Gaussian's per-example sums are kept:
    summed in one go, its gradient would change in the last bits.)
    """
    if model.likelihood == "bernoulli":
        if batch_sum:
            return -F.binary_cross_entropy_with_logits(decoded, x, reduction="sum")
        return -F.binary_cross_entropy_with_logits(decoded, x, reduction="none").sum(-1)
    if model.likelihood == "gaussian":
        logvar = model.decoder_logvar
        per_example = -0.5 * (LOG_2PI + logvar + (x - decoded) ** 2 * torch.exp(-logvar)).sum(-1)
        return per_example.sum() if batch_sum else per_example
    raise ValueError(f"unknown likelihood {model.likelihood!r}; expected 'bernoulli' or 'gaussian'")


def _target(model, flat: torch.Tensor, target) -> torch.Tensor:
    """The images that the reconstruction is compared with: ``target`` (checked like the data, of the input's shape,
    flattened) or, when None, the input ``flat`` itself."""
    if target is None:
        return flat
    clean = _data(model, target, "target")
    if clean.shape != flat.shape:
        raise ValueError(f"target must hold the clean image of each input, shape {tuple(flat.shape)} once flattened; "
                         f"got shape {tuple(target.shape)}")
    return clean


def reconstruction_loss(model, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """An autoencoder's loss: -log p(target | x_hat) = binary cross-entropy summed over pixels, shape (B,), in nats.

    ``model(x)`` must return the Bernoulli logits of x_hat (an Autoencoder; a VAE is refused: use ``elbo_terms``).
    ``target``: the images the reconstruction is compared with, default ``x``; for a denoising autoencoder, ``x`` is
    the corrupted input and ``target`` the clean images (same shape as ``x``).
    """
    if callable(getattr(model, "reparameterize", None)):
        raise TypeError(f"reconstruction_loss is an autoencoder's loss; got a {type(model).__name__}, whose forward "
                        f"returns (decoded, mu, logvar): use elbo or elbo_terms")
    flat = _data(model, x)
    return _reconstruction_loss(model, flat, _target(model, flat, target))


def _reconstruction_loss(model, x: torch.Tensor, target: torch.Tensor | None = None,
                         batch_sum: bool = False) -> torch.Tensor:
    """reconstruction_loss without checks, for x (and target) already (B, in_dim); ``batch_sum=True``: summed over
    the batch (a scalar)."""
    return -_log_likelihood(model, model(x), x if target is None else target, batch_sum)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, per_dim: bool = False) -> torch.Tensor:
    """KL( N(mu, diag exp(logvar)) || N(0, I) ) in nats.

    Closed form per dimension j: 0.5 * (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2).
    Inputs (B, D); returns (B,), or (B, D) with ``per_dim=True``.
    """
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
    return kl if per_dim else kl.sum(-1)


def free_bits_kl(kl: torch.Tensor, free_bits: float) -> torch.Tensor:
    """The free-bits KL term of Kingma et al. (2016): sum_j max(free_bits, KL_j), in nats per example (a scalar).

    ``kl``: the per-dimension KL of a mini-batch, (B, D), e.g. ``gaussian_kl(mu, logvar, per_dim=True)``; KL_j is
    its mean over the batch. ``free_bits``: the floor, in nats per latent dimension (>= 0). A dimension whose KL_j
    is below the floor costs ``free_bits`` whatever it does, so its KL gets no gradient: the optimiser has no
    reason to push it to 0 and may use those nats to encode information. With ``free_bits = 0`` it is the batch
    mean of the KL.
    """
    checks.nonnegative("free_bits", free_bits)
    if not isinstance(kl, torch.Tensor) or kl.dim() != 2:
        got = tuple(kl.shape) if isinstance(kl, torch.Tensor) else type(kl).__name__
        raise ValueError(f"kl must be the per-dimension KL of a batch, shape (B, D); got {got}")
    return torch.clamp(kl.mean(0), min=free_bits).sum()


def elbo_terms(model, x: torch.Tensor, samples: int = 1, per_dim: bool = False, target: torch.Tensor | None = None,
               y=None):
    """The ELBO's two terms per example: (E_q[log p(x|z)] (B,), KL(q(z|x) || p(z)) (B,)), in nats.

    The expectation is a Monte Carlo average over ``samples`` reparameterised draws z = mu + sigma * eps;
    the KL is exact (closed form); ``per_dim=True`` gives it per latent dimension, (B, latent_dim).
    ``x``: (B, in_dim) or (B, C, H, W), checked as ``fit`` checks its data. ``target``: the images whose
    likelihood is taken, default ``x``; for a denoising VAE, q(z|x) sees the corrupted ``x`` and the first term is
    E_q[log p(target|z)] with the clean ``target`` (same shape as ``x``). ``y``: a CVAE's labels (then the terms
    are E_q[log p(x|z,y)] and KL(q(z|x,y) || p(z))).
    """
    return _checked_elbo_terms(model, x, samples, per_dim, target, y, "elbo_terms")


def _checked_elbo_terms(model, x, samples, per_dim, target, y, what: str):
    """elbo_terms after checking every input; ``what`` names the public function in the error messages."""
    _require_vae(model, what)
    checks.positive("samples", samples, integer=True)
    flat = _data(model, x)
    return _elbo_terms(model, flat, samples, per_dim=per_dim, target=_target(model, flat, target),
                       y=_labels(model, y, flat, what))


def _elbo_terms(model, x: torch.Tensor, samples: int = 1, per_dim: bool = False, target: torch.Tensor | None = None,
                y: torch.Tensor | None = None, batch_sum: bool = False):
    """elbo_terms without checks, for x (and target) already (B, in_dim) and y None or float rows (B, n_classes)
    (the trainer's per-batch path). ``batch_sum=True``: the first term summed over the batch (a scalar); the KL
    stays per example (or per dimension)."""
    target = x if target is None else target
    mu, logvar = _encode(model, x, y)
    log_px_z = 0.0
    for _ in range(samples):
        decoded = _decode(model, model.reparameterize(mu, logvar), y)
        log_px_z = log_px_z + _log_likelihood(model, decoded, target, batch_sum)
    return log_px_z / samples, gaussian_kl(mu, logvar, per_dim=per_dim)


def elbo(model, x: torch.Tensor, samples: int = 1, beta: float = 1.0,
         target: torch.Tensor | None = None, y=None) -> torch.Tensor:
    """The evidence lower bound E_q[log p(x|z)] - beta * KL(q(z|x) || p(z)), per example (B,), in nats.

    ``beta = 1`` gives the ELBO proper (a lower bound on log p(x)); other values (finite, >= 0) give the beta-VAE
    objective. ``target``: see :func:`elbo_terms` (a denoising VAE's clean images). ``y``: a CVAE's labels, class
    indices (B,) or float rows (B, n_classes): then it is the bound on log p(x|y).
    """
    _require_vae(model, "elbo")
    checks.nonnegative("beta", beta)
    log_px_z, kl = _checked_elbo_terms(model, x, samples, False, target, y, "elbo")
    return log_px_z - beta * kl


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 * torch.exp(-logvar)).sum(-1)


@torch.no_grad()
def iwae_log_likelihood(model, x: torch.Tensor, k: int = 5000, batch_size: int = 20000, y=None) -> torch.Tensor:
    """The importance-weighted estimate of log p(x) (Burda et al., 2015), per example (B,), in nats.

        log p(x) ~= logsumexp_i [log p(x|z_i) + log p(z_i) - log q(z_i|x)] - log k,   z_i ~ q(z|x).

    With w_i = p(x, z_i) / q(z_i|x) the importance weights, E_q[w] = p(x), and the estimate is log of their mean.
    Its expectation L_k is a lower bound that never loosens as k grows, L_k <= L_{k+1} <= log p(x) (Burda et al.,
    2015, Theorem 1), and L_1 is the ELBO. Burda et al. prove L_k -> log p(x) as k -> infinity for bounded weights.
    Boundedness is sufficient, not necessary: since log(mean of w) >= mean of log w, a finite ELBO
    (E_q |log w| < infinity) already gives the limit (strong law of large numbers, with uniform integrability).
    How fast the gap closes depends on the weights' tails: for large k it is about Var_q[w] / (2 k p(x)^2) when
    that variance is finite, and it can stay large for any practical k when it is not (e.g. a q with lighter tails
    than the posterior).

    At most ``batch_size`` decoder evaluations are held in memory at once, so k = 5000 over the whole MNIST
    test set runs in bounded memory; the k samples are combined with a running logsumexp.
    ``y``: a CVAE's labels; then it estimates log p(x|y), with q(z|x,y) and p(x|z,y).
    """
    _require_vae(model, "iwae_log_likelihood")
    checks.positive("k", k, integer=True)
    checks.positive("batch_size", batch_size, integer=True)
    flat = _data(model, x)
    labels = _labels(model, y, flat, "iwae_log_likelihood")
    n = flat.shape[0]
    out = torch.empty(n, device=flat.device, dtype=flat.dtype)
    rows = max(1, batch_size // k)            # examples per chunk when all k samples of a row fit
    per_row = min(k, batch_size)              # samples drawn at once for one example
    for start in range(0, n, rows):
        xb = flat[start:start + rows]
        yb = labels[start:start + rows] if labels is not None else None
        mu, logvar = _encode(model, xb, yb)
        b, d = mu.shape
        total = torch.full((b,), -math.inf, device=flat.device, dtype=flat.dtype)
        for done in range(0, k, per_row):
            m = min(per_row, k - done)
            eps = torch.randn(m, b, d, device=flat.device, dtype=mu.dtype)
            z = mu + torch.exp(0.5 * logvar) * eps                        # (m, b, d)
            decoded = _decode(model, z.reshape(m * b, d), yb.repeat(m, 1) if yb is not None else None)
            log_px_z = _log_likelihood(model, decoded, xb.repeat(m, 1)).reshape(m, b)
            log_pz = -0.5 * (LOG_2PI + z ** 2).sum(-1)
            log_qz = _log_normal(z, mu, logvar)
            total = torch.logaddexp(total, torch.logsumexp(log_px_z + log_pz - log_qz, dim=0))
        out[start:start + rows] = total - math.log(k)
    return out


def gaussian_kl_two(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor,
                    per_dim: bool = False) -> torch.Tensor:
    """KL( N(mu_q, diag exp(logvar_q)) || N(mu_p, diag exp(logvar_p)) ) between two diagonal Gaussians, in nats.

    Closed form per dimension j (chapter 3 of the book):
    log(sigma_p / sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2.
    Inputs broadcast against each other, e.g. (B, D) with (D,); returns the sum over the last dimension, shape (B,),
    or every dimension's term with ``per_dim=True``. With mu_p = 0 and logvar_p = 0 it equals ``gaussian_kl``.
    """
    try:
        torch.broadcast_shapes(mu_q.shape, logvar_q.shape, mu_p.shape, logvar_p.shape)
    except RuntimeError:
        raise ValueError("mu_q, logvar_q, mu_p and logvar_p must broadcast to one shape (..., D); got "
                         f"{tuple(mu_q.shape)}, {tuple(logvar_q.shape)}, {tuple(mu_p.shape)}, {tuple(logvar_p.shape)}")
    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) * torch.exp(-logvar_p) - 1.0)
    return kl if per_dim else kl.sum(-1)


# ----------------------------------------------------------------------- gradient estimators (chapter 5)


def _gaussian_params(mu, sigma) -> tuple[torch.Tensor, torch.Tensor]:
    mu, sigma = torch.as_tensor(mu), torch.as_tensor(sigma)
    mu = mu if mu.is_floating_point() else mu.to(torch.get_default_dtype())
    sigma = sigma.to(mu.dtype)
    if mu.dim() == 0 or mu.shape != sigma.shape:
        raise ValueError(f"mu and sigma must be tensors of one shape (..., D); got {tuple(mu.shape)} and "
                         f"{tuple(sigma.shape)}")
    if not bool((sigma > 0).all()) or not bool(torch.isfinite(mu).all() & torch.isfinite(sigma).all()):
        raise ValueError("sigma must be positive and mu and sigma finite")
    return mu.detach(), sigma.detach()


def _values(f, z: torch.Tensor, batch_shape) -> torch.Tensor:
    fz = f(z)
    if not isinstance(fz, torch.Tensor) or fz.shape != (z.shape[0], *batch_shape):
        got = tuple(fz.shape) if isinstance(fz, torch.Tensor) else type(fz).__name__
        raise ValueError(f"f must map z of shape {tuple(z.shape)} to one value per sample, shape "
                         f"{(z.shape[0], *batch_shape)}; got {got}")
    return fz


def reparameterized_gradient(f, mu, sigma, n: int, generator: torch.Generator | None = None):
    """``n`` single-sample reparameterisation estimates of the gradient of E_{z ~ N(mu, diag sigma^2)}[f(z)].

    z = mu + sigma * eps with eps ~ N(0, I), so the chain rule gives d f(z)/d mu = f'(z) and d f(z)/d sigma = f'(z) * eps.
    ``f`` (differentiable) maps z of shape (n, *mu.shape) to one value per sample, shape (n, *mu.shape[:-1]); each
    value may depend only on its own row of z. ``mu``, ``sigma``: (..., D) with sigma > 0.
    Returns (g_mu, g_sigma), each (n, *mu.shape); their mean over the first dimension is the n-sample estimate.
    """
    mu, sigma = _gaussian_params(mu, sigma)
    eps = torch.randn((n, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
    z = (mu + sigma * eps).requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(_values(f, z, mu.shape[:-1]).sum(), z)
    return grad, grad * eps


@torch.no_grad()
def score_function_gradient(f, mu, sigma, n: int, generator: torch.Generator | None = None, baseline=0.0):
    """``n`` single-sample score-function (REINFORCE) estimates of the gradient of E_{z ~ N(mu, diag sigma^2)}[f(z)].

    grad = (f(z) - baseline) * grad log q(z), with, for eps = (z - mu) / sigma,
    d log q / d mu = eps / sigma and d log q / d sigma = (eps^2 - 1) / sigma. Only values of ``f`` are needed (no
    derivative). A ``baseline`` that does not depend on z (a number, or a tensor of shape mu.shape[:-1], one per
    batch row) leaves the estimator unbiased, since E[grad log q] = 0; a good one reduces its variance.
    Shapes as in :func:`reparameterized_gradient`; returns (g_mu, g_sigma), each (n, *mu.shape).
    """
    mu, sigma = _gaussian_params(mu, sigma)
    eps = torch.randn((n, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
    weight = (_values(f, mu + sigma * eps, mu.shape[:-1]) - baseline).unsqueeze(-1)
    return weight * eps / sigma, weight * (eps ** 2 - 1) / sigma


@torch.no_grad()
def active_units(model, x: torch.Tensor, threshold: float = 0.01, batch_size: int = 1000, y=None):
    """Burda et al. (2015)'s active units: latent dimension j is active when A_j = Var_x(E_q[z_j | x]) > threshold.

    E_q[z_j | x] is the encoder mean mu_j(x); the variance is taken over the examples ``x`` (N >= 2, any shape the
    model accepts). Returns (count, A): the number of active dimensions and A, shape (latent_dim,).
    ``y``: a CVAE's labels (then the means are those of q(z|x,y)).
    """
    checks.nonnegative("threshold", threshold)
    checks.positive("batch_size", batch_size, integer=True)
    flat = _data(model, x)
    if flat.shape[0] < 2:
        raise ValueError(f"active_units needs at least 2 examples to measure a variance; got {flat.shape[0]}")
    labels = _labels(model, y, flat, "active_units")
    label_batches = labels.split(batch_size) if labels is not None else [None] * len(flat.split(batch_size))
    mu = torch.cat([_posterior_mean(model, xb, yb) for xb, yb in zip(flat.split(batch_size), label_batches)])
    activity = mu.var(0, unbiased=False)
    return int((activity > threshold).sum()), activity


def _posterior_mean(model, x: torch.Tensor, y=None) -> torch.Tensor:
    """mu(x) of an encoder that returns (mu, logvar); TypeError for one that returns codes (an Autoencoder)."""
    out = _encode(model, x, y)
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
        raise TypeError(f"active_units needs a VAE, whose encode returns (mu, logvar); got a {type(model).__name__}, "
                        f"whose encode returns {type(out).__name__}")
    return out[0]
