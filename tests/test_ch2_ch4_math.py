"""The maths of chapters 2 (autoencoders) and 4 (variational inference and the ELBO), against independent oracles.

Chapter 4: the toy models of ``vaelib.toy`` (closed forms) against scipy's adaptive quadrature, Monte Carlo with
``torch.distributions``, and Bayes' rule evaluated pointwise; the identity log p(x) = ELBO + KL(q || p(z|x)) for
arbitrary q; Jensen's bound; the bimodal model's closed-form ELBO, its best Gaussian q and the Hessian at mu = 0
against adaptive and Gauss-Hermite quadrature, Monte Carlo, finite differences and multistart optimisation;
the ELBO widget's JavaScript (run under Node) against Python.
Chapter 2: PCA and principal angles (``vaelib.linear``) against scikit-learn and scipy; a linear autoencoder trained
by gradient descent spans the PCA subspace; an overcomplete one reaches zero error by copying; the ideal denoiser
is the posterior mean (BCE, masking noise, Tweedie's formula); the split of the ELBO's KL term (ELBO surgery).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch.distributions import Normal, kl_divergence

from vaelib import toy
from vaelib.widgets import ELBOExplorer

from widget_js import check_conventions, needs_node, run_node

MODELS = [toy.LinearGaussian(2.0, 0.0, 1.0), toy.LinearGaussian(-0.7, 1.3, 0.4), toy.LinearGaussian(3.0, -2.0, 2.5)]
RNG = np.random.default_rng(0)
QS = [(float(m), float(ls)) for m, ls in zip(RNG.normal(0, 1.5, 6), RNG.uniform(-2.0, 1.0, 6))]


def _quad(f, lo=-np.inf, hi=np.inf):
    return integrate.quad(f, lo, hi, epsabs=1e-12, epsrel=1e-10, limit=200)[0]


# ---------------------------------------------------------------- chapter 4: the linear-Gaussian toy model
@pytest.mark.parametrize("model", MODELS, ids=repr)
@pytest.mark.parametrize("x", [-3.0, 0.2, 2.5])
def test_log_px_closed_form_matches_adaptive_quadrature(model, x):
    """p(x) = integral p(x|z) p(z) dz, with the integrand from scipy.stats, not from vaelib."""
    px = _quad(lambda z: stats.norm.pdf(x, model.a * z + model.b, model.s) * stats.norm.pdf(z))
    assert float(model.log_px(x)) == pytest.approx(math.log(px), abs=1e-8)
    assert toy.log_px_quadrature(model, x) == pytest.approx(math.log(px), abs=1e-8)


@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_posterior_is_bayes_rule_pointwise(model):
    x = 1.1
    mean, std = model.posterior(x)
    z = np.linspace(-4, 4, 41)
    bayes = stats.norm.pdf(x, model.a * z + model.b, model.s) * stats.norm.pdf(z) / math.exp(float(model.log_px(x)))
    np.testing.assert_allclose(stats.norm.pdf(z, float(mean), float(std)), bayes, rtol=1e-10, atol=1e-14)
    # and it integrates to one with the mean and variance it claims
    post = lambda z: stats.norm.pdf(x, model.a * z + model.b, model.s) * stats.norm.pdf(z)  # noqa: E731
    px = _quad(post)
    assert _quad(lambda z: z * post(z)) / px == pytest.approx(float(mean), abs=1e-8)
    assert _quad(lambda z: (z - float(mean)) ** 2 * post(z)) / px == pytest.approx(float(std) ** 2, rel=1e-7)


@pytest.mark.parametrize("model", MODELS, ids=repr)
@pytest.mark.parametrize("mu,log_sigma", QS[:3])
def test_elbo_terms_match_monte_carlo_with_torch_distributions(model, mu, log_sigma):
    x, n = 0.8, 400_000
    q = Normal(torch.tensor(mu, dtype=torch.float64), torch.tensor(math.exp(log_sigma), dtype=torch.float64))
    z = q.sample(torch.Size([n]))
    log_lik = Normal(model.a * z + model.b, torch.tensor(model.s, dtype=torch.float64)).log_prob(torch.tensor(x))
    recon_mc, se = float(log_lik.mean()), float(log_lik.std() / math.sqrt(n))
    assert float(model.expected_log_likelihood(x, mu, log_sigma)) == pytest.approx(recon_mc, abs=5 * se + 1e-9)
    kl = kl_divergence(q, Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)))
    assert float(model.kl_to_prior(mu, log_sigma)) == pytest.approx(float(kl), abs=1e-12)
    # the ELBO as E_q[log p(x, z) - log q(z)], estimated with the same draws
    w = log_lik + Normal(0.0, 1.0).log_prob(z) - q.log_prob(z)
    assert float(model.elbo(x, mu, log_sigma)) == pytest.approx(float(w.mean()), abs=5 * float(w.std()) / math.sqrt(n))


@pytest.mark.parametrize("model", MODELS, ids=repr)
@pytest.mark.parametrize("mu,log_sigma", QS)
def test_gap_is_the_kl_to_the_exact_posterior_for_arbitrary_q(model, mu, log_sigma):
    """log p(x) - ELBO(q) = KL(q || p(z|x)), the KL from torch.distributions and from scipy quadrature."""
    x = -1.4
    gap = float(model.log_px(x) - model.elbo(x, mu, log_sigma))
    mean, std = model.posterior(x)
    kl = float(kl_divergence(Normal(torch.tensor(mu), torch.tensor(math.exp(log_sigma))),
                             Normal(mean.float(), std.float())))
    assert gap == pytest.approx(kl, rel=1e-5, abs=1e-6)
    qpdf = lambda z: stats.norm.pdf(z, mu, math.exp(log_sigma))  # noqa: E731
    kl_quad = _quad(lambda z: qpdf(z) * (stats.norm.logpdf(z, mu, math.exp(log_sigma))
                                         - stats.norm.logpdf(z, float(mean), float(std))),
                    mu - 40 * math.exp(log_sigma), mu + 40 * math.exp(log_sigma))
    assert gap == pytest.approx(kl_quad, abs=1e-8)
    assert float(model.kl_to_posterior(x, mu, log_sigma)) == pytest.approx(gap, abs=1e-10)


@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_jensen_bound_holds_and_is_tight_only_at_the_posterior(model):
    xs = torch.linspace(-4, 4, 9, dtype=torch.float64)
    mu = torch.as_tensor(RNG.normal(0, 2, (50, 1)))
    log_sigma = torch.as_tensor(RNG.uniform(-3, 1.5, (50, 1)))
    elbo = model.elbo(xs, mu, log_sigma)                       # broadcasts to (50, 9)
    assert elbo.shape == (50, 9)
    assert bool((elbo < model.log_px(xs)).all())
    mean, std = model.posterior(xs)
    np.testing.assert_allclose(model.elbo(xs, mean, torch.log(std)), model.log_px(xs), atol=1e-12)
    # Jensen's inequality as such: log E_q[p(x,z)/q(z)] >= E_q[log p(x,z)/q(z)], with E_q[p/q] = p(x) by quadrature
    x, m, ls = 0.5, 0.9, -0.8
    ratio = lambda z: math.exp(float(model.log_joint(x, z)))  # noqa: E731   q(z) * p(x,z)/q(z)
    assert math.log(_quad(ratio)) == pytest.approx(float(model.log_px(x)), abs=1e-9)
    assert float(model.elbo(x, m, ls)) < math.log(_quad(ratio))


def test_optimising_q_recovers_the_exact_posterior():
    model = toy.LinearGaussian(1.5, 0.5, 0.8)
    x = torch.tensor([2.0, -1.0], dtype=torch.float64)
    mu = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    ls = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([mu, ls], lr=0.05)
    for _ in range(1500):
        opt.zero_grad()
        (-model.elbo(x, mu, ls).sum()).backward()
        opt.step()
    mean, std = model.posterior(x)
    np.testing.assert_allclose(mu.detach(), mean, atol=1e-4)
    np.testing.assert_allclose(ls.detach().exp(), std, atol=1e-4)


def test_sample_has_the_marginal_of_the_model():
    model = toy.LinearGaussian(2.0, 1.0, 0.5)
    z, x = model.sample(200_000, generator=torch.Generator().manual_seed(0))
    assert float(z.std()) == pytest.approx(1.0, abs=0.01)
    assert float(x.mean()) == pytest.approx(1.0, abs=0.02)
    assert float(x.var()) == pytest.approx(4.25, rel=0.02)
    # Kolmogorov-Smirnov against the closed-form marginal N(b, a^2 + s^2)
    assert stats.kstest(x[:5000].numpy(), stats.norm(1.0, math.sqrt(4.25)).cdf).pvalue > 1e-3


# ---------------------------------------------------------------- chapter 4: the bimodal toy model, by quadrature
@pytest.mark.parametrize("x", [0.5, 4.0])
def test_square_model_quadratures_match_scipy(x):
    model = toy.SquareGaussian(0.5)
    log_joint = lambda z: stats.norm.logpdf(x, z * z, 0.5) + stats.norm.logpdf(z)  # noqa: E731
    px = _quad(lambda z: math.exp(log_joint(z)), -12, 12)
    assert toy.log_px_quadrature(model, x) == pytest.approx(math.log(px), abs=1e-7)
    mu, ls = 1.3, -1.2
    sig = math.exp(ls)
    elbo = _quad(lambda z: stats.norm.pdf(z, mu, sig) * (log_joint(z) - stats.norm.logpdf(z, mu, sig)),
                 mu - 30 * sig, mu + 30 * sig)
    assert toy.elbo_quadrature(model, x, mu, ls) == pytest.approx(elbo, abs=1e-8)
    kl = _quad(lambda z: stats.norm.pdf(z, mu, sig) * (stats.norm.logpdf(z, mu, sig) - log_joint(z) + math.log(px)),
               mu - 30 * sig, mu + 30 * sig)
    assert toy.kl_to_posterior_quadrature(model, x, mu, ls) == pytest.approx(kl, abs=1e-7)
    # the identity holds here too, with neither side in closed form
    assert toy.log_px_quadrature(model, x) - toy.elbo_quadrature(model, x, mu, ls) == pytest.approx(kl, abs=1e-7)


def test_square_model_best_gaussian_misses_one_mode_and_the_gap_is_near_log_2():
    from scipy.optimize import minimize

    model, x = toy.SquareGaussian(0.5), 4.0
    res = minimize(lambda p: -toy.elbo_quadrature(model, x, p[0], p[1]), [1.0, -1.0])
    gap = toy.log_px_quadrature(model, x) + res.fun
    assert abs(res.x[0]) == pytest.approx(float(model.posterior_modes(x)), abs=0.05)   # on one mode
    assert gap == pytest.approx(math.log(2), abs=0.02)          # half of the posterior's mass is missed
    assert gap > 0.6


def test_gauss_hermite_elbo_is_exact_for_the_linear_model():
    model = toy.LinearGaussian(-1.2, 0.3, 0.7)
    for mu, ls in QS:
        assert toy.elbo_quadrature(model, 0.9, mu, ls, n=5) == pytest.approx(float(model.elbo(0.9, mu, ls)), abs=1e-10)


@pytest.mark.parametrize("mu,log_sigma", [(2.6, 0.99), (-4.0, 1.2), (0.3, -3.0)])
def test_kl_quadrature_matches_the_closed_form_also_for_wide_or_narrow_q(mu, log_sigma):
    model = toy.LinearGaussian(2.0, 0.5, 1.0)
    assert toy.kl_to_posterior_quadrature(model, 1.5, mu, log_sigma) == pytest.approx(
        float(model.kl_to_posterior(1.5, mu, log_sigma)), abs=1e-9)


def test_vectorised_quadratures_match_the_scalar_ones_and_are_differentiable():
    model = toy.SquareGaussian(0.4)
    xs = torch.tensor([-0.5, 0.7, 3.0], dtype=torch.float64)
    batch = toy.log_px_quadrature(model, xs, n=4001)
    assert batch.shape == (3,)
    for x, v in zip(xs.tolist(), batch.tolist()):
        assert v == pytest.approx(toy.log_px_quadrature(model, x, n=4001), abs=1e-12)
    mu = torch.tensor([0.1, 0.8, 1.5], dtype=torch.float64, requires_grad=True)
    ls = torch.tensor([-0.5, -1.0, -2.0], dtype=torch.float64, requires_grad=True)
    elbo = toy.elbo_gauss_hermite(model, xs, mu, ls, n=5)
    for i in range(3):
        assert elbo[i].item() == pytest.approx(toy.elbo_quadrature(model, float(xs[i]), mu[i].item(), ls[i].item()),
                                               abs=1e-10)
    elbo.sum().backward()
    eps = 1e-6   # the gradient against central finite differences
    for i in range(3):
        up = toy.elbo_quadrature(model, float(xs[i]), mu[i].item() + eps, ls[i].item())
        down = toy.elbo_quadrature(model, float(xs[i]), mu[i].item() - eps, ls[i].item())
        assert float(mu.grad[i]) == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("bad,match", [
    (lambda: toy.LinearGaussian(a=0.0), "a must be a non-zero"),
    (lambda: toy.LinearGaussian(s=-1.0), "s must be a positive"),
    (lambda: toy.SquareGaussian(s=0.0), "s must be a positive"),
    (lambda: toy.LinearGaussian().sample(0), "n must be a positive"),
    (lambda: toy.log_px_quadrature(toy.SquareGaussian(), 1.0, lo=1.0, hi=-1.0), "lo < hi"),
    (lambda: ELBOExplorer(s=0.0), "s must be a positive"),
    (lambda: ELBOExplorer(z_extent=-1.0), "z_extent must be a positive"),
    (lambda: ELBOExplorer(mu=float("nan")), "mu must be a finite"),
])
def test_bad_input_raises_a_clear_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


# ---------------------------------------------------------------- chapter 4: the bimodal toy model, closed forms
SQUARE_QS = [(x, mu, ls) for x in (-1.0, 0.3, 1.1, 4.0) for mu, ls in ((0.0, -0.7), (0.9, -1.6), (-2.1, 0.4))]


@pytest.mark.parametrize("s", [0.5, 1.3])
@pytest.mark.parametrize("x,mu,log_sigma", SQUARE_QS)
def test_square_model_closed_form_elbo_matches_adaptive_quadrature(s, x, mu, log_sigma):
    model = toy.SquareGaussian(s)
    sig = math.exp(log_sigma)
    log_joint = lambda z: stats.norm.logpdf(x, z * z, s) + stats.norm.logpdf(z)  # noqa: E731
    elbo = _quad(lambda z: stats.norm.pdf(z, mu, sig) * (log_joint(z) - stats.norm.logpdf(z, mu, sig)),
                 mu - 30 * sig, mu + 30 * sig)
    assert float(model.elbo(x, mu, log_sigma)) == pytest.approx(elbo, abs=1e-8)


def test_square_model_closed_form_elbo_matches_monte_carlo_with_torch_distributions():
    model = toy.SquareGaussian(0.5)
    x, mu, log_sigma = 2.0, 0.8, -0.9
    q = Normal(torch.tensor(mu, dtype=torch.float64), math.exp(log_sigma))
    z = q.sample((400_000,))
    terms = Normal(z ** 2, 0.5).log_prob(torch.tensor(x, dtype=torch.float64)) + Normal(0.0, 1.0).log_prob(z) \
        - q.log_prob(z)
    se = float(terms.std()) / math.sqrt(len(z))
    assert abs(float(terms.mean()) - float(model.elbo(x, mu, log_sigma))) < 4 * se


@pytest.mark.parametrize("s", [0.5, 1.0])
@pytest.mark.parametrize("x", [-0.3, 0.1, 0.6, 2.0, 4.0])
def test_square_model_posterior_modes_are_the_maxima_of_the_joint(s, x):
    from scipy.optimize import minimize_scalar

    model = toy.SquareGaussian(s)
    neg = lambda z: -(stats.norm.logpdf(x, z * z, s) + stats.norm.logpdf(z))  # noqa: E731
    best = minimize_scalar(neg, bounds=(0.0, 10.0), method="bounded", options=dict(xatol=1e-10))
    assert float(model.posterior_modes(x)) == pytest.approx(best.x, abs=1e-5)
    # two modes (and a dip at 0) exactly when x > s^2 / 2
    assert (neg(0.0) > best.fun + 1e-9) == (x > s * s / 2)


def _square_elbo_gh(x, mu, log_sigma, s, n=20):
    """The oracle for SquareGaussian's ELBO: Gauss-Hermite quadrature of E_q[log p(x, z)] in numpy, plus H[q].
    Exact (the log-joint is a polynomial of degree 4 in z) and independent of vaelib; broadcasts over mu, log_sigma."""
    t, w = np.polynomial.hermite_e.hermegauss(n)
    mu, log_sigma = np.asarray(mu, dtype=float)[..., None], np.asarray(log_sigma, dtype=float)[..., None]
    z = mu + np.exp(log_sigma) * t
    log_joint = -0.5 * np.log(2 * np.pi * s * s) - (x - z * z) ** 2 / (2 * s * s) - 0.5 * np.log(2 * np.pi) - z * z / 2
    return (w * log_joint).sum(-1) / math.sqrt(2 * math.pi) + 0.5 * (math.log(2 * math.pi) + 1) + log_sigma[..., 0]


def _fd_hessian(f, p, h=1e-4):
    """The Hessian of f at p by central finite differences."""
    p, n = np.asarray(p, dtype=float), len(p)
    hess = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            e_i, e_j = np.eye(n)[i] * h, np.eye(n)[j] * h
            hess[i, j] = (f(p + e_i + e_j) - f(p + e_i - e_j) - f(p - e_i + e_j) + f(p - e_i - e_j)) / (4 * h * h)
    return hess


def test_square_model_gauss_hermite_oracle_agrees_with_adaptive_quadrature():
    s, x, mu, ls = 0.5, 2.0, 0.7, -0.8
    sig = math.exp(ls)
    log_joint = lambda z: stats.norm.logpdf(x, z * z, s) + stats.norm.logpdf(z)  # noqa: E731
    elbo = _quad(lambda z: stats.norm.pdf(z, mu, sig) * (log_joint(z) - stats.norm.logpdf(z, mu, sig)),
                 mu - 30 * sig, mu + 30 * sig)
    assert float(_square_elbo_gh(x, mu, ls, s)) == pytest.approx(elbo, abs=1e-9)


@pytest.mark.parametrize("x", [-1.0, 0.5, 1.1, 2.0, 4.0])
def test_square_model_mu_zero_with_its_best_sigma_is_a_local_maximum(x):
    """Not a saddle point: at mu = 0 and the best sigma, both eigenvalues of the Hessian are negative, for every x."""
    s = 0.5
    f = lambda p: float(_square_elbo_gh(x, p[0], p[1], s))  # noqa: E731
    v = ((2 * x - s * s) + math.sqrt((2 * x - s * s) ** 2 + 24 * s * s)) / 12
    p0 = [0.0, 0.5 * math.log(v)]
    grad = [(f(np.add(p0, d)) - f(np.subtract(p0, d))) / 2e-5 for d in ([1e-5, 0.0], [0.0, 1e-5])]
    assert np.abs(grad).max() < 1e-6                                     # stationary
    hess = _fd_hessian(f, p0)
    np.testing.assert_allclose(hess, np.diag([-1 / v, -2 - 12 * v * v / (s * s)]), rtol=1e-4, atol=1e-4)
    assert np.linalg.eigvalsh(hess).max() < 0
    assert float(toy.SquareGaussian(s).best_gaussian(x)[2]) >= f(p0) - 1e-12


@pytest.mark.parametrize("s", [0.3, 0.5, 1.0])
def test_square_model_best_gaussian_matches_multistart_optimisation(s):
    from scipy.optimize import minimize

    model = toy.SquareGaussian(s)
    onset = s * s / 2 + math.sqrt(3) * s          # where the stationary points off mu = 0 appear
    for x in [-1.0, 0.0, 0.4, onset - 0.01, onset + 0.01, 1.13, 1.14, 1.5, 3.0, 9.0]:
        neg = lambda p: -float(_square_elbo_gh(x, p[0], p[1], s))  # noqa: E731
        runs = [minimize(neg, [m0, l0], method="Nelder-Mead", options=dict(xatol=1e-9, fatol=1e-13, maxiter=4000))
                for m0 in (0.0, 0.5, 1.5, 3.0) for l0 in (-3.0, 0.0)]
        best = min(runs, key=lambda r: r.fun)
        mu, log_sigma, elbo = (float(t) for t in model.best_gaussian(x))
        assert elbo == pytest.approx(-best.fun, abs=1e-9), x
        assert mu == pytest.approx(abs(best.x[0]), abs=1e-4), x
        assert log_sigma == pytest.approx(best.x[1], abs=1e-4), x
        assert elbo == pytest.approx(float(model.elbo(x, mu, log_sigma)), abs=1e-12)
    xs = torch.tensor([-1.0, 0.4, 1.5, 9.0], dtype=torch.float64)       # vectorised like the scalar calls
    for got, x in zip(model.best_gaussian(xs)[2].tolist(), xs.tolist()):
        assert got == pytest.approx(float(model.best_gaussian(x)[2]), abs=1e-12)


def test_square_model_global_optimum_leaves_mu_zero_between_1_12_and_1_15_for_s_one_half():
    """By brute force alone (a grid over (mu, log sigma)), the chapter's threshold x ~ 1.134 for s = 0.5."""
    mus, log_sigmas = np.linspace(0.0, 2.0, 201), np.linspace(-2.0, 0.0, 1001)
    grid_mu, grid_ls = np.meshgrid(mus, log_sigmas, indexing="ij")
    model = toy.SquareGaussian(0.5)
    for x, zero in [(1.12, True), (1.15, False)]:
        values = _square_elbo_gh(x, grid_mu, grid_ls, 0.5).max(1)      # the best sigma for each mu
        assert bool(mus[int(np.argmax(values))] == 0.0) is zero
        assert (float(model.best_gaussian(x)[0]) == 0.0) is zero
        assert float(model.best_gaussian(x)[2]) == pytest.approx(values.max(), abs=1e-4)


# ---------------------------------------------------------------- chapter 4: the ELBO widget
def test_elbo_widget_quantities_satisfy_the_identity():
    w = ELBOExplorer(a=1.7, b=-0.4, s=0.6, x=2.2, mu=-0.3, log_sigma=0.4)
    q = w.quantities()
    assert q["elbo"] == pytest.approx(q["recon"] - q["klPrior"], abs=1e-12)
    assert q["gap"] == pytest.approx(q["klPost"], abs=1e-10)
    assert q["gap"] > 0


def test_elbo_js_follows_the_widget_conventions():
    assert "sliderTable(side, uid," in check_conventions("elbo", ELBOExplorer)


@needs_node
def test_elbo_javascript_computes_the_same_numbers_as_python(tmp_path):
    """Run elbo.js's own toyQuantities under Node for many parameter settings and compare with vaelib.toy."""
    cases = [dict(a=float(a), b=float(b), s=float(s), x=float(x), mu=float(m), log_sigma=float(ls))
             for a, b, s, x, m, ls in zip(RNG.choice([-2.5, -0.6, 0.8, 2.0, 3.1], 12), RNG.normal(0, 1, 12),
                                          RNG.uniform(0.2, 2.0, 12), RNG.normal(0, 3, 12), RNG.normal(0, 2, 12),
                                          RNG.uniform(-3, 1.5, 12))]
    results = run_node(tmp_path, "elbo", "console.log(JSON.stringify(s.map(m.toyQuantities)));", cases)
    for case, got in zip(cases, results):
        want = ELBOExplorer(case["a"], case["b"], case["s"], x=case["x"], mu=case["mu"],
                            log_sigma=case["log_sigma"]).quantities()
        assert set(got) == set(want)
        for k in want:
            assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-9), k


# ---------------------------------------------------------------- chapter 2: linear autoencoders and PCA
from vaelib import linear  # noqa: E402
from vaelib.widgets import ImageSliderExplorer  # noqa: E402


def _low_rank_data(n=2000, d=12, seed=0):
    """Data with a clear spectrum: variances 9, 6, 4, 2.5, then 0.3 and below (distinct eigenvalues)."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    sd = torch.tensor([3.0, 2.45, 2.0, 1.58] + [0.55 - 0.04 * i for i in range(d - 4)], dtype=torch.float64)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) * sd) @ basis.T + 0.5


def test_pca_matches_scikit_learn():
    from sklearn.decomposition import PCA

    x = _low_rank_data()
    mean, comps, var = linear.pca(x, 4)
    sk = PCA(n_components=4).fit(x.numpy())
    np.testing.assert_allclose(mean, sk.mean_, atol=1e-12)
    np.testing.assert_allclose(var * len(x) / (len(x) - 1), sk.explained_variance_, rtol=1e-10)   # sklearn: 1/(N-1)
    np.testing.assert_allclose(np.abs((comps.numpy() * sk.components_).sum(1)), 1.0, atol=1e-10)   # same up to sign
    recon = linear.pca_reconstruct(x, mean, comps)
    np.testing.assert_allclose(recon, sk.inverse_transform(sk.transform(x.numpy())), atol=1e-10)


def test_pca_error_is_the_sum_of_the_discarded_eigenvalues():
    x = _low_rank_data()
    eig = np.sort(np.linalg.eigvalsh(np.cov(x.numpy().T, bias=True)))[::-1]
    for k in (1, 4, 8):
        mean, comps, _ = linear.pca(x, k)
        assert linear.squared_error(x, linear.pca_reconstruct(x, mean, comps)) == pytest.approx(eig[k:].sum(), rel=1e-9)


def test_principal_angles_match_scipy():
    from scipy.linalg import subspace_angles

    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(30, 4, generator=g, dtype=torch.float64), torch.randn(30, 4, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(linear.principal_angles(a, b), np.sort(subspace_angles(a.numpy(), b.numpy())),
                               atol=1e-12)
    # the same space in another basis: all angles zero
    mix = torch.randn(4, 4, generator=g, dtype=torch.float64)
    assert float(linear.principal_angles(a, a @ mix).max()) < 1e-7


def test_error_from_covariance_equals_the_per_example_average():
    x = _low_rank_data(n=500)
    mean, cov = linear.covariance(x)
    model = linear.LinearAutoencoder(x.shape[1], 3, mean=mean, seed=1, dtype=torch.float64)
    with torch.no_grad():
        direct = ((x - model(x)) ** 2).sum(1).mean()
        assert float(model.error_from_covariance(cov)) == pytest.approx(float(direct), rel=1e-10)
    np.testing.assert_allclose(cov, np.cov(x.numpy().T, bias=True), atol=1e-12)


def test_linear_autoencoder_spans_the_pca_subspace_with_the_pca_error():
    x = _low_rank_data()
    model, hist = linear.fit_linear_autoencoder(x, 4, steps=1500, lr=3e-2, lr_end=1e-3, dtype=torch.float64)
    mean, comps, _ = linear.pca(x, 4)
    angles = linear.principal_angles(model.dec.detach(), comps.T)
    assert float(angles.max()) < 1e-3
    pca_err = linear.squared_error(x, linear.pca_reconstruct(x, mean, comps))
    with torch.no_grad():
        assert linear.squared_error(x, model(x)) == pytest.approx(pca_err, rel=1e-5)
    assert hist["error"][-1] == pytest.approx(pca_err, rel=1e-5)
    assert hist["step"][-1] == 1500 and len(hist["decoder"]) == len(hist["step"])
    # but not PCA's basis: the decoder's columns are not orthonormal principal directions
    assert float((model.dec.detach().T @ model.dec.detach() - torch.eye(4, dtype=torch.float64)).abs().max()) > 1e-2


def test_a_wide_linear_autoencoder_learns_to_copy():
    x = _low_rank_data(n=500, d=8)
    mean, cov = linear.covariance(x)
    model, _ = linear.fit_linear_autoencoder(x, 12, steps=2000, lr=3e-2, lr_end=1e-3, dtype=torch.float64)
    assert model.code_dim > x.shape[1]
    with torch.no_grad():
        assert linear.squared_error(x, model(x)) < 1e-6 * float(torch.trace(cov))
        # and it copies inputs that look nothing like the data, too
        other = torch.randn(100, 8, dtype=torch.float64) * 5
        assert linear.squared_error(other, model(other)) < 1e-4 * float((other ** 2).sum(1).mean())


def test_random_wide_encoder_with_pseudo_inverse_is_exact():
    g = torch.Generator().manual_seed(0)
    e = torch.randn(40, 25, generator=g, dtype=torch.float64)
    x = torch.rand(7, 25, generator=g, dtype=torch.float64)
    np.testing.assert_allclose((x @ e.T) @ torch.linalg.pinv(e).T, x, atol=1e-12)


@pytest.mark.parametrize("x", [0.0, 0.13, 0.5, 0.9, 1.0])
def test_bce_is_smallest_at_x_hat_equal_x_and_its_floor_is_the_binary_entropy(x):
    from scipy.optimize import minimize_scalar
    from scipy.special import xlogy

    bce = lambda p: -(xlogy(x, p) + xlogy(1 - x, 1 - p))  # noqa: E731
    best = minimize_scalar(bce, bounds=(1e-12, 1 - 1e-12), method="bounded", options={"xatol": 1e-10})
    entropy = float(stats.bernoulli(x).entropy()) if 0 < x < 1 else 0.0
    assert best.fun == pytest.approx(entropy, abs=1e-6)
    if 0 < x < 1:
        assert best.x == pytest.approx(x, abs=1e-5)


# ---------------------------------------------------------------- chapter 2: denoising and the aggregate posterior
def _pixel_values(n, pi, gen):
    """n draws of one pixel: exactly 0 with probability pi, else Beta(0.6, 0.4) (ink, often near 1)."""
    return np.where(gen.random(n) < pi, 0.0, gen.beta(0.6, 0.4, n))


@pytest.mark.parametrize("pi", [0.0, 0.3, 0.8])
def test_bce_is_smallest_at_the_conditional_mean(pi):
    # The expected BCE over x of one output r is smallest at r = E[x]: the ideal denoiser is the posterior mean.
    from scipy.optimize import minimize_scalar
    from scipy.special import xlogy

    x = _pixel_values(20_000, pi, np.random.default_rng(1))
    expected_bce = lambda r: float(-(xlogy(x, r) + xlogy(1 - x, 1 - r)).mean())  # noqa: E731
    best = minimize_scalar(expected_bce, bounds=(1e-9, 1 - 1e-9), method="bounded", options={"xatol": 1e-10})
    assert best.x == pytest.approx(x.mean(), abs=1e-6)


@pytest.mark.parametrize("p,pi", [(0.25, 0.5), (0.5, 0.8), (0.75, 0.1)])
def test_masking_noise_posterior_mean_of_one_pixel_matches_monte_carlo(p, pi):
    # Chapter 2, last exercise: E[x | x_tilde = 0] = p mu / (p + (1 - p) pi), with x_tilde = m x, m ~ Bernoulli(1 - p).
    gen = np.random.default_rng(2)
    n = 400_000
    x = _pixel_values(n, pi, gen)
    x_tilde = np.where(gen.random(n) < p, 0.0, x)
    mu, pi_hat = 0.6 * (1 - pi), pi                      # the Beta(0.6, 0.4) part has mean 0.6
    formula = p * mu / (p + (1 - p) * pi_hat)
    reads_0 = x_tilde == 0
    simulated = x[reads_0].mean()
    assert simulated == pytest.approx(formula, abs=4 * x[reads_0].std() / math.sqrt(reads_0.sum()))
    share = p + (1 - p) * pi
    assert reads_0.mean() == pytest.approx(share, abs=4 * math.sqrt(share * (1 - share) / n))
    np.testing.assert_array_equal(x[~reads_0], x_tilde[~reads_0])      # a pixel that reads > 0 was kept


@pytest.mark.parametrize("sigma", [0.1, 0.5, 2.0])
def test_tweedie_posterior_mean_is_input_plus_sigma_squared_times_the_score(sigma):
    # x takes a few values with fixed weights; x_tilde = x + sigma * eps. E[x | x_tilde] by Bayes' rule against
    # x_tilde + sigma^2 d/dx_tilde log p_sigma(x_tilde), the derivative by autograd.
    values = torch.tensor([-1.0, 0.2, 0.5, 2.0], dtype=torch.float64)
    weights = torch.tensor([0.1, 0.4, 0.3, 0.2], dtype=torch.float64)
    x_tilde = torch.linspace(-3, 4, 15, dtype=torch.float64, requires_grad=True)
    joint = weights * Normal(values, sigma).log_prob(x_tilde[:, None]).exp()          # (15, 4): p(x) p(x_tilde | x)
    bayes_mean = (joint * values).sum(1) / joint.sum(1)
    log_p = torch.log(joint.sum(1))
    score, = torch.autograd.grad(log_p.sum(), x_tilde)
    np.testing.assert_allclose((x_tilde + sigma ** 2 * score).detach(), bayes_mean.detach(), rtol=1e-10, atol=1e-10)


def test_expected_kl_to_the_prior_is_mutual_information_plus_aggregate_kl():
    # Hoffman and Johnson (2016), quoted in chapter 2: E_x KL(q(z|x) || p(z)) = I_q(x; z) + KL(q(z) || p(z)), with x
    # uniform over N points, q(z|x_n) = N(m_n, s_n^2) and p(z) = N(0, 1); the right-hand side by quadrature.
    from vaelib.losses import gaussian_kl

    m = torch.tensor([-1.5, 0.3, 0.8, 2.2], dtype=torch.float64)
    s = torch.tensor([0.4, 0.9, 0.2, 0.6], dtype=torch.float64)
    lhs = float(gaussian_kl(m[:, None], torch.log(s[:, None] ** 2)).mean())
    assert lhs == pytest.approx(float(kl_divergence(Normal(m, s), Normal(0.0, 1.0)).mean()), rel=1e-12)
    comps = [stats.norm(float(a), float(b)) for a, b in zip(m, s)]
    q_agg = lambda z: sum(c.pdf(z) for c in comps) / len(comps)  # noqa: E731
    mutual_info = sum(_quad(lambda z, c=c: c.pdf(z) * (c.logpdf(z) - np.log(q_agg(z))), -12, 12)
                      for c in comps) / len(comps)
    aggregate_kl = _quad(lambda z: q_agg(z) * (np.log(q_agg(z)) - stats.norm.logpdf(z)), -12, 12)
    assert mutual_info + aggregate_kl == pytest.approx(lhs, rel=1e-8)
    assert 0 < mutual_info <= math.log(len(comps)) and aggregate_kl > 0.01   # the aggregate is not the prior


@pytest.mark.parametrize("bad,match", [
    (lambda: linear.pca(torch.rand(10, 5), 0), "number of components k"),
    (lambda: linear.pca(torch.rand(10, 5), 6), "number of components k"),
    (lambda: linear.pca(torch.rand(10), 1), "expected data"),
    (lambda: linear.principal_angles(torch.rand(5, 2), torch.rand(6, 2)), "two bases"),
    (lambda: linear.fit_linear_autoencoder(torch.rand(10, 5), 2, steps=0), "steps and record_every"),
    (lambda: linear.fit_linear_autoencoder(torch.rand(10, 5), 2, lr=-1.0), "lr and lr_end"),
    (lambda: linear.LinearAutoencoder(5, 0), "code_dim"),
])
def test_linear_bad_input_raises_a_clear_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


# ---------------------------------------------------------------- chapter 2: the image slider widget
def test_image_slider_stores_every_frame_as_8_bit_grey_levels():
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(5, 3, 1, 6, 4, generator=g)
    frames[0, 0, 0, 0, 0], frames[0, 0, 0, 0, 1] = -0.2, 1.7          # clipped to [0, 1]
    ref = torch.rand(3, 1, 6, 4, generator=g)
    w = ImageSliderExplorer(frames, [f"f{i}" for i in range(5)], reference=ref, index=2)
    assert (w.n_frames, w.n_images, w.height, w.width, w.index) == (5, 3, 6, 4, 2)
    for k in range(5):
        np.testing.assert_array_equal(w.frame(k), np.round(frames[k, :, 0].clamp(0, 1).numpy() * 255).astype(np.uint8))
    import base64
    got_ref = np.frombuffer(base64.b64decode(w.reference), dtype=np.uint8).reshape(3, 6, 4)
    np.testing.assert_array_equal(got_ref, np.round(ref[:, 0].numpy() * 255).astype(np.uint8))


@pytest.mark.parametrize("bad,match", [
    (lambda: ImageSliderExplorer(np.zeros((2, 3, 4)), ["a", "b"]), "frames must have shape"),
    (lambda: ImageSliderExplorer(np.zeros((2, 3, 4, 4)), ["a"]), "one label per frame"),
    (lambda: ImageSliderExplorer(np.zeros((2, 3, 4, 4)), ["a", "b"], reference=np.zeros((2, 4, 4))), "reference must"),
    (lambda: ImageSliderExplorer(np.zeros((2, 3, 4, 4)), ["a", "b"], index=2), "index must be"),
    (lambda: ImageSliderExplorer(np.full((2, 3, 4, 4), np.nan), ["a", "b"]), "finite"),
])
def test_image_slider_bad_input_raises_a_clear_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_image_slider_js_follows_the_widget_conventions():
    assert "sliderRow(root, { id: `${uid}-" in check_conventions("imageslider", ImageSliderExplorer)


@needs_node
def test_image_slider_javascript_decodes_the_embedded_frames(tmp_path):
    w = ImageSliderExplorer(np.random.default_rng(0).random((3, 2, 5, 5)), ["a", "b", "c"])
    frames = run_node(tmp_path, "imageslider", "console.log(JSON.stringify(Array.from(m.bytesFromBase64(s.frames))));",
                      {"frames": w.frames})
    got = np.array(frames, dtype=np.uint8).reshape(3, 2, 5, 5)
    for k in range(3):
        np.testing.assert_array_equal(got[k], w.frame(k))
