"""Chapters 5 and 7: the gradient estimators, active units, and the chapters' widgets.

Oracles: analytic gradients of Gaussian expectations, Gauss-Hermite quadrature (exact for polynomials) for the
estimators' variances, autograd through a large Monte Carlo average, autograd and perturbations of vaelib's Gaussian
log-likelihood for the decoder's best variances, constructed encoders with known activity, and the widgets'
JavaScript run under Node against the Python numbers.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import vaelib
from vaelib.losses import active_units, gaussian_kl, log_likelihood, reparameterized_gradient, score_function_gradient
from vaelib.widgets import BetaExplorer, ReparamExplorer

from widget_js import check_conventions, needs_node, run_node

# f, E_{N(mu, s^2)}[f(z)] as a function of (mu, s): its gradient is the oracle (1-D, f sums over the last axis).
EXPECTATIONS = {
    "z^2": (lambda z: (z ** 2).sum(-1), lambda m, s: m ** 2 + s ** 2),
    "z^2 + 10": (lambda z: (z ** 2).sum(-1) + 10, lambda m, s: m ** 2 + s ** 2 + 10),
    "exp(z)": (lambda z: z.exp().sum(-1), lambda m, s: torch.exp(m + s ** 2 / 2)),
    "sin(2z)": (lambda z: torch.sin(2 * z).sum(-1), lambda m, s: torch.sin(2 * m) * torch.exp(-2 * s ** 2)),
}
ESTIMATORS = {"reparameterised": reparameterized_gradient, "score function": score_function_gradient}


def analytic_gradient(expectation, mu: float, sigma: float) -> tuple[float, float]:
    m = torch.tensor(mu, dtype=torch.float64, requires_grad=True)
    s = torch.tensor(sigma, dtype=torch.float64, requires_grad=True)
    gm, gs = torch.autograd.grad(expectation(m, s), (m, s))
    return gm.item(), gs.item()


@pytest.mark.parametrize("name", EXPECTATIONS)
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (1.0, 0.5), (-0.7, 1.3)])
def test_both_estimators_are_unbiased(name, estimator, mu, sigma):
    f, expectation = EXPECTATIONS[name]
    want = analytic_gradient(expectation, mu, sigma)
    gen = torch.Generator().manual_seed(1)
    g_mu, g_sigma = ESTIMATORS[estimator](f, torch.tensor([mu], dtype=torch.float64),
                                          torch.tensor([sigma], dtype=torch.float64), 400_000, generator=gen)
    for got, target in ((g_mu[:, 0], want[0]), (g_sigma[:, 0], want[1])):
        stderr = got.std().item() / math.sqrt(len(got))
        assert abs(got.mean().item() - target) < 5 * stderr + 1e-9, (name, estimator, got.mean().item(), target)


def gauss_hermite_moments(g, n: int = 60) -> tuple[float, float]:
    """Mean and variance of g(eps), eps ~ N(0, 1), by Gauss-Hermite quadrature (exact for polynomials of degree < 2n)."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    mean = float(np.sum(w * g(x)))
    return mean, float(np.sum(w * g(x) ** 2)) - mean ** 2


@pytest.mark.parametrize("c", [0.0, 10.0])
@pytest.mark.parametrize("mu, sigma", [(1.0, 0.5), (0.0, 1.0)])
def test_estimator_variances_for_a_quadratic_match_quadrature_and_closed_forms(c, mu, sigma):
    """f(z) = z^2 + c: per-sample variances of the four gradient components against exact values."""
    f = lambda z: (z ** 2).sum(-1) + c  # noqa: E731
    exact = {  # per-sample gradient as a function of eps
        ("reparameterised", 0): lambda e: 2 * (mu + sigma * e),
        ("reparameterised", 1): lambda e: 2 * (mu + sigma * e) * e,
        ("score function", 0): lambda e: ((mu + sigma * e) ** 2 + c) * e / sigma,
        ("score function", 1): lambda e: ((mu + sigma * e) ** 2 + c) * (e ** 2 - 1) / sigma,
    }
    # The closed forms the chapter states (c = 0): Var_reparam(d/dmu) = 4 sigma^2 and
    # Var_score(d/dmu) = (mu^4 + 18 mu^2 sigma^2 + 15 sigma^4) / sigma^2 - 4 mu^2.
    if c == 0:
        assert gauss_hermite_moments(exact[("reparameterised", 0)])[1] == pytest.approx(4 * sigma ** 2)
        assert gauss_hermite_moments(exact[("score function", 0)])[1] == pytest.approx(
            (mu ** 4 + 18 * mu ** 2 * sigma ** 2 + 15 * sigma ** 4) / sigma ** 2 - 4 * mu ** 2)
    for (estimator, k), g in exact.items():
        mean, var = gauss_hermite_moments(g)
        got = ESTIMATORS[estimator](f, torch.tensor([mu], dtype=torch.float64), torch.tensor([sigma], dtype=torch.float64),
                                    400_000, generator=torch.Generator().manual_seed(2))[k][:, 0]
        assert got.mean().item() == pytest.approx(mean, abs=5 * math.sqrt(var / len(got)) + 1e-9)
        assert got.var().item() == pytest.approx(var, rel=0.05), (estimator, k)


def test_a_constant_shift_inflates_only_the_score_function_and_a_baseline_removes_it():
    mu, sigma = torch.tensor([0.5], dtype=torch.float64), torch.tensor([0.8], dtype=torch.float64)
    f0, f100 = (lambda z: (z ** 2).sum(-1)), (lambda z: (z ** 2).sum(-1) + 100)
    r0 = reparameterized_gradient(f0, mu, sigma, 10_000, generator=torch.Generator().manual_seed(3))[0]
    r100 = reparameterized_gradient(f100, mu, sigma, 10_000, generator=torch.Generator().manual_seed(3))[0]
    assert torch.equal(r0, r100)
    s0 = score_function_gradient(f0, mu, sigma, 10_000, generator=torch.Generator().manual_seed(3))[0]
    s100 = score_function_gradient(f100, mu, sigma, 10_000, generator=torch.Generator().manual_seed(3))[0]
    s100b = score_function_gradient(f100, mu, sigma, 10_000, generator=torch.Generator().manual_seed(3), baseline=100)[0]
    assert s100.var() > 100 * s0.var()
    assert torch.allclose(s100b, s0, rtol=1e-9, atol=1e-9)


def test_n_sample_average_has_variance_over_n():
    mu, sigma = torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    f = lambda z: (z ** 2).sum(-1)  # noqa: E731
    g = score_function_gradient(f, mu, sigma, 64 * 4000, generator=torch.Generator().manual_seed(4))[0][:, 0]
    single = (mu ** 4 + 18 * mu ** 2 * sigma ** 2 + 15 * sigma ** 4) / sigma ** 2 - 4 * mu ** 2
    assert g.reshape(4000, 64).mean(1).var().item() == pytest.approx(single.item() / 64, rel=0.08)


def test_estimators_agree_on_a_vae_reconstruction_term_with_batch_dimensions():
    """Gradient of E_q[log p(x|z)] w.r.t. the encoder outputs (mu, sigma) of a small random VAE, per example."""
    torch.manual_seed(0)
    model = vaelib.VAE(16, hidden=(8,), latent_dim=3).double()
    x = torch.rand(4, 16, dtype=torch.float64).bernoulli()
    mu = torch.randn(4, 3, dtype=torch.float64) * 0.5
    sigma = torch.rand(4, 3, dtype=torch.float64) * 0.5 + 0.3

    def f(z):   # (n, 4, 3) -> (n, 4)
        n = z.shape[0]
        with torch.no_grad() if not z.requires_grad else torch.enable_grad():
            return log_likelihood(model, model.decode(z.reshape(-1, 3)), x.repeat(n, 1)).reshape(n, 4)

    # Oracle: autograd through a fixed large sample of eps (an unbiased, low-noise estimate of the true gradient).
    m, s = mu.clone().requires_grad_(True), sigma.clone().requires_grad_(True)
    eps = torch.randn(200_000, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    want_mu, want_sigma = torch.autograd.grad(f(m + s * eps).mean(0).sum(), (m, s))
    model.zero_grad()
    for estimator in ESTIMATORS.values():
        g_mu, g_sigma = estimator(f, mu, sigma, 200_000, generator=torch.Generator().manual_seed(6))
        assert g_mu.shape == g_sigma.shape == (200_000, 4, 3)
        for got, want in ((g_mu, want_mu), (g_sigma, want_sigma)):
            se = got.std(0) / math.sqrt(got.shape[0])
            assert ((got.mean(0) - want).abs() <= 5 * se + 2e-3).all()
    r = reparameterized_gradient(f, mu, sigma, 20_000, generator=torch.Generator().manual_seed(7))[0].var(0)
    sf = score_function_gradient(f, mu, sigma, 20_000, generator=torch.Generator().manual_seed(7))[0].var(0)
    assert (sf > 10 * r).all(), "the score function should be far noisier on a log-likelihood in the hundreds of nats"


@pytest.mark.parametrize("bad", [
    dict(mu=torch.tensor([0.0]), sigma=torch.tensor([0.0])),
    dict(mu=torch.tensor([0.0]), sigma=torch.tensor([-1.0])),
    dict(mu=torch.tensor([0.0, 1.0]), sigma=torch.tensor([1.0])),
    dict(mu=torch.tensor(0.0), sigma=torch.tensor(1.0)),
])
@pytest.mark.parametrize("estimator", ESTIMATORS.values())
def test_bad_gaussian_parameters_raise_value_error(bad, estimator):
    with pytest.raises(ValueError, match="mu and sigma|sigma must be positive"):
        estimator(lambda z: z.sum(-1), bad["mu"], bad["sigma"], 10)


@pytest.mark.parametrize("estimator", ESTIMATORS.values())
def test_f_with_the_wrong_output_shape_raises_value_error(estimator):
    with pytest.raises(ValueError, match="one value per sample"):
        estimator(lambda z: z, torch.zeros(2), torch.ones(2), 10)


# ---------------------------------------------------------------- the Gaussian decoder's variances (chapter 5)
def _gaussian_decoder_setup(seed=0):
    """A small Gaussian VAE (double), grey images x (64, 12) and decoded means for fixed codes: the weights stay fixed."""
    torch.manual_seed(seed)
    model = vaelib.VAE(12, hidden=(8,), latent_dim=2, likelihood="gaussian").double()
    x = torch.rand(64, 12, dtype=torch.float64)
    x[:, 0] = 0.0                                                     # one pixel that never varies
    with torch.no_grad():
        decoded = model.decode(torch.randn(64, 2, dtype=torch.float64))
    return model, x, decoded


def _mean_log_likelihood(model, decoded, x, logvar):
    with torch.no_grad():
        model.decoder_logvar.copy_(logvar)
    return log_likelihood(model, decoded, x).mean()


def test_the_best_variance_of_each_pixel_is_its_mean_squared_error():
    """Chapter 5, exercise 4(a): for fixed means, sigma_i^2 = E[(x_i - mu_i)^2] maximises the expected log-density."""
    model, x, decoded = _gaussian_decoder_setup()
    best = ((x - decoded) ** 2).mean(0).log()
    value = _mean_log_likelihood(model, decoded, x, best)
    (grad,) = torch.autograd.grad(value, model.decoder_logvar)
    assert grad.abs().max() < 1e-12                                   # a stationary point, by autograd
    for i in range(12):                                               # and a maximum in every coordinate
        for step in (-0.3, 0.3):
            moved = best.clone()
            moved[i] += step
            assert _mean_log_likelihood(model, decoded, x, moved) < value


def test_the_best_shared_variance_is_the_average_and_per_pixel_variances_gain_half_the_log_ratio():
    """Chapter 5, exercise 4(b): shared sigma^2 = mean_i e_i; per-pixel minus shared = 1/2 sum_i log(mean e / e_i)."""
    model, x, decoded = _gaussian_decoder_setup(1)
    e = ((x - decoded) ** 2).mean(0)
    shared = e.mean().log().expand(12).clone()
    value = _mean_log_likelihood(model, decoded, x, shared)
    (grad,) = torch.autograd.grad(value, model.decoder_logvar)
    assert abs(grad.sum().item()) < 1e-12                             # d/d(shared log-variance) = sum of the pixels'
    for step in (-0.2, 0.2):
        assert _mean_log_likelihood(model, decoded, x, shared + step) < value
    gain = _mean_log_likelihood(model, decoded, x, e.log()) - value
    assert gain.item() == pytest.approx(0.5 * torch.log(e.mean() / e).sum().item(), rel=1e-10)
    assert gain.item() > 0


def test_adam_moves_a_learned_decoder_log_variance_about_one_learning_rate_per_step():
    """Chapter 5: from 0, vaelib.fit's Adam takes a Gaussian decoder's log-variances to about -lr * steps, no further."""
    torch.manual_seed(0)
    model = vaelib.VAE(16, hidden=(8,), latent_dim=2, likelihood="gaussian")
    x = torch.rand(256, 16) * 0.2                                     # squared errors far below the initial variance 1
    lr, epochs, batch = 1e-2, 5, 32
    vaelib.fit(model, x, epochs=epochs, batch_size=batch, lr=lr, verbose=False)
    reach = -lr * epochs * math.ceil(len(x) / batch)
    logvar = model.decoder_logvar.detach()
    assert logvar.min() >= 1.1 * reach, "Adam moved a log-variance farther than about one learning rate per step"
    assert logvar.max() <= 0.8 * reach, "every log-variance should have fallen most of the way to the step budget's reach"


# ---------------------------------------------------------------- active units (chapter 7)
class KnownEncoder:
    """A stand-in model whose posterior means are x times fixed scales: Var_x(mu_j) is known exactly."""

    def __init__(self, scales):
        self.scales = torch.as_tensor(scales, dtype=torch.float64)

    def encode(self, x):
        return x * self.scales, torch.zeros_like(x)


def test_active_units_counts_dimensions_whose_mean_varies_over_the_data():
    x = torch.randn(20_000, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    x = (x - x.mean(0)) / x.std(0, unbiased=False)          # every column has variance exactly 1
    scales = [0.0, 0.05, 0.09, 0.2, 1.0]                    # variances 0, 0.0025, 0.0081, 0.04, 1
    count, activity = active_units(KnownEncoder(scales), x, threshold=0.01, batch_size=777)
    assert count == 2
    assert torch.allclose(activity, torch.tensor(scales, dtype=torch.float64) ** 2)
    assert active_units(KnownEncoder(scales), x, threshold=0.005)[0] == 3
    assert active_units(KnownEncoder(scales), x, threshold=0.0)[0] == 4


def test_a_vae_with_dead_mean_heads_has_those_units_inactive():
    torch.manual_seed(0)
    model = vaelib.VAE(12, hidden=(10,), latent_dim=4)
    with torch.no_grad():
        model.to_mu.weight[[1, 3]] = 0.0                   # mu_1 and mu_3 are constants: collapsed units
        model.to_mu.weight[[0, 2]] *= 20                   # the others vary a lot
    count, activity = active_units(model, torch.rand(500, 12))
    assert count == 2 and activity[1] == 0 and activity[3] == 0 and (activity[[0, 2]] > 0.01).all()


def test_active_units_rejects_too_few_examples_and_bad_thresholds():
    with pytest.raises(ValueError, match="at least 2"):
        active_units(KnownEncoder([1.0]), torch.zeros(1, 1))
    with pytest.raises(ValueError, match="threshold"):
        active_units(KnownEncoder([1.0]), torch.zeros(5, 1), threshold=float("nan"))


# ---------------------------------------------------------------- the widgets' JavaScript
@pytest.mark.parametrize("name, widget_class", [("reparam", ReparamExplorer), ("beta", BetaExplorer)])
def test_widget_js_follows_the_conventions(name, widget_class):
    src = check_conventions(name, widget_class)
    assert ("sliderTable(side, uid," in src or "sliderRow(root, { id: `${uid}-" in src) and "draw();" in src


@needs_node
def test_reparam_javascript_computes_the_same_numbers_as_python(tmp_path):
    rng = np.random.default_rng(0)
    widgets = [ReparamExplorer(mu=rng.uniform(-3, 3, 2), sigma=rng.uniform(0.1, 2, 2), n=50, seed=k) for k in range(8)]
    cases = [dict(mu1=w.mu1, mu2=w.mu2, sigma1=w.sigma1, sigma2=w.sigma2, eps=w.eps) for w in widgets]
    for w, got in zip(widgets, run_node(tmp_path, "reparam", "console.log(JSON.stringify(s.map(m.reparamState)));", cases)):
        want = w.quantities()
        for key in ("z", "mean", "std", "klDims"):
            assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
        assert got["kl"] == pytest.approx(want["kl"], rel=1e-12)
        mu = torch.tensor([[w.mu1, w.mu2]], dtype=torch.float64)
        logvar = 2 * torch.tensor([[w.sigma1, w.sigma2]], dtype=torch.float64).log()
        q = torch.distributions.Normal(mu, logvar.mul(0.5).exp())
        p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
        assert got["kl"] == pytest.approx(torch.distributions.kl_divergence(q, p).sum().item(), rel=1e-12)
        assert got["kl"] == pytest.approx(gaussian_kl(mu, logvar).item(), rel=1e-12)


def test_reparam_widget_rejects_bad_input():
    with pytest.raises(ValueError, match="sigma"):
        ReparamExplorer(sigma=(1.0, 0.0))
    with pytest.raises(ValueError, match="2 numbers"):
        ReparamExplorer(mu=(0.0, 0.0, 1.0))


def _beta_widget(f=3, d=5, n=4):
    rng = np.random.default_rng(1)
    return BetaExplorer(betas=[0.5, 1.0, 4.0][:f], recon=rng.uniform(80, 200, f), kl=rng.uniform(0, 30, f),
                        kl_dims=rng.uniform(0, 3, (f, d)), dim_active=rng.uniform(size=(f, d)) > 0.5,
                        inputs=rng.uniform(size=(n, 1, 28, 28)), reconstructions=rng.uniform(size=(f, n, 1, 28, 28)),
                        samples=rng.uniform(size=(f, n, 28, 28)))


@needs_node
def test_beta_javascript_reports_the_embedded_numbers(tmp_path):
    w = _beta_widget()
    state = dict(betas=w.betas, recon=w.recon, kl=w.kl, active=w.active, kl_dims=w.kl_dims)
    points = run_node(tmp_path, "beta", "console.log(JSON.stringify(s.betas.map((_, k) => m.betaPoint(s, k))));", state)
    for k, got in enumerate(points):
        assert got["negElbo"] == pytest.approx(w.recon[k] + w.kl[k])
        assert got["loss"] == pytest.approx(w.recon[k] + w.betas[k] * w.kl[k])
        assert got["active"] == sum(w.dim_active[k]) and got["latentDim"] == 5


def test_beta_widget_embeds_images_in_order_and_rejects_bad_input():
    import base64

    w = _beta_widget()
    data = np.frombuffer(base64.b64decode(w.images), dtype=np.uint8).reshape(3, 2, 4, 28, 28)
    rng = np.random.default_rng(1)
    rng.uniform(80, 200, 3), rng.uniform(0, 30, 3), rng.uniform(0, 3, (3, 5)), rng.uniform(size=(3, 5))
    rng.uniform(size=(4, 1, 28, 28))
    rec = rng.uniform(size=(3, 4, 1, 28, 28))
    assert np.array_equal(data[:, 0], np.round(rec[:, :, 0] * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="one entry per VAE"):
        BetaExplorer([1.0, 2.0], [1.0], [1.0], [[1.0]], [[True]], np.zeros((1, 28, 28)), np.zeros((1, 1, 28, 28)),
                     np.zeros((1, 1, 28, 28)))
    with pytest.raises(ValueError, match="F x N"):
        BetaExplorer([1.0], [1.0], [1.0], [[1.0]], [[True]], np.zeros((2, 28, 28)), np.zeros((1, 1, 28, 28)),
                     np.zeros((1, 2, 28, 28)))
