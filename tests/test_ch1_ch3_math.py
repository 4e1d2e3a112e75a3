"""The maths of chapters 1 (Bayes' rule) and 3 (KL divergence), against independent oracles.

- ``vaelib.losses.gaussian_kl_two`` (closed-form KL between diagonal Gaussians) against torch.distributions,
  Monte Carlo and ``gaussian_kl``;
- discrete KL: the chapter's formula against scipy and torch, Gibbs' inequality, asymmetry, and the lecture's sign slip;
- the KL explorer's quadrature (Python transcription and, where Node.js is installed, the JavaScript itself) against
  the closed form and scipy's adaptive quadrature; forward-KL fits match moments, reverse-KL fits find a mode;
- the Bayes explorer's JavaScript against scipy, and the logistic form of the posterior for equal variances.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, stats
from scipy.special import expit
from torch.distributions import Categorical, Independent, Normal, kl_divergence

from vaelib.losses import gaussian_kl, gaussian_kl_two
from vaelib.widgets import BayesExplorer, KLExplorer

from widget_js import check_conventions, needs_node, run_node



def kl_normal_1d(m1, s1, m2, s2):
    """The closed form the chapter states: KL(N(m1, s1^2) || N(m2, s2^2)) in nats."""
    return math.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5


# --- closed-form Gaussian KL ---------------------------------------------------------------------------------------

def _random_pair(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(4)]


def test_gaussian_kl_two_matches_torch_distributions():
    mu_q, logvar_q, mu_p, logvar_p = _random_pair((64, 5), 0)
    q = Independent(Normal(mu_q, (0.5 * logvar_q).exp()), 1)
    p = Independent(Normal(mu_p, (0.5 * logvar_p).exp()), 1)
    got = gaussian_kl_two(mu_q, logvar_q, mu_p, logvar_p)
    assert got.shape == (64,)
    torch.testing.assert_close(got, kl_divergence(q, p), rtol=1e-10, atol=1e-10)
    per_dim = gaussian_kl_two(mu_q, logvar_q, mu_p, logvar_p, per_dim=True)
    torch.testing.assert_close(per_dim, kl_divergence(Normal(mu_q, (0.5 * logvar_q).exp()),
                                                      Normal(mu_p, (0.5 * logvar_p).exp())), rtol=1e-10, atol=1e-10)


def test_gaussian_kl_two_against_a_standard_normal_is_gaussian_kl_and_broadcasts():
    mu, logvar, _, _ = _random_pair((8, 3), 1)
    zeros = torch.zeros(3, dtype=torch.float64)
    torch.testing.assert_close(gaussian_kl_two(mu, logvar, zeros, zeros), gaussian_kl(mu, logvar))
    torch.testing.assert_close(gaussian_kl_two(mu, logvar, mu, logvar), torch.zeros(8, dtype=torch.float64))


def test_gaussian_kl_two_matches_monte_carlo():
    """E_q[log q(z) - log p(z)] by sampling, within 5 standard errors of the closed form."""
    torch.manual_seed(0)
    mu_q, logvar_q = torch.tensor([0.3, -1.0], dtype=torch.float64), torch.tensor([-0.5, 0.4], dtype=torch.float64)
    mu_p, logvar_p = torch.tensor([1.0, 0.5], dtype=torch.float64), torch.tensor([0.2, -0.3], dtype=torch.float64)
    q = Independent(Normal(mu_q, (0.5 * logvar_q).exp()), 1)
    p = Independent(Normal(mu_p, (0.5 * logvar_p).exp()), 1)
    z = q.sample((200_000,))
    log_ratio = q.log_prob(z) - p.log_prob(z)
    mc, se = log_ratio.mean().item(), log_ratio.std().item() / math.sqrt(len(z))
    exact = gaussian_kl_two(mu_q, logvar_q, mu_p, logvar_p).item()
    assert abs(mc - exact) < 5 * se, (mc, exact, se)
    assert exact > 0.1   # not a trivially small KL that any estimate would hit


def test_gaussian_kl_two_rejects_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match="broadcast"):
        gaussian_kl_two(torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(2), torch.zeros(2))


# --- discrete KL ---------------------------------------------------------------------------------------------------

def discrete_kl(p, q):
    """The chapter's definition: sum_x p(x) log(p(x)/q(x)), with 0 log 0 = 0."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def test_discrete_kl_matches_scipy_and_torch():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
        ours = discrete_kl(p, q)
        assert ours == pytest.approx(stats.entropy(p, q), rel=1e-12)
        assert ours == pytest.approx(kl_divergence(Categorical(probs=torch.tensor(p)),
                                                   Categorical(probs=torch.tensor(q))).item(), rel=1e-9)


def test_discrete_kl_is_nonnegative_zero_only_at_equality_and_asymmetric():
    rng = np.random.default_rng(1)
    pairs = [(rng.dirichlet(np.full(4, 0.5)), rng.dirichlet(np.full(4, 0.5))) for _ in range(2000)]
    forward = np.array([discrete_kl(p, q) for p, q in pairs])
    reverse = np.array([discrete_kl(q, p) for p, q in pairs])
    assert forward.min() > 0 and reverse.min() > 0              # distinct pairs: strictly positive (Gibbs)
    assert discrete_kl(pairs[0][0], pairs[0][0]) == 0.0
    assert np.mean(np.abs(forward - reverse) > 1e-3) > 0.9      # asymmetric for almost every pair
    assert (forward > reverse).any() and (forward < reverse).any()


def test_the_lectures_sign_slip_gives_a_nonpositive_number():
    """-sum q log(q/p) = sum q log(p/q) = -KL(q||p) <= 0: the minus sign belongs with the flipped ratio."""
    rng = np.random.default_rng(2)
    for _ in range(200):
        q, p = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(5))
        slip = -np.sum(q * np.log(q / p))
        assert slip == pytest.approx(np.sum(q * np.log(p / q)))
        assert slip == pytest.approx(-discrete_kl(q, p)) and slip < 0


# --- the KL explorer's quadrature ----------------------------------------------------------------------------------

GAUSSIAN_CASES = [(0.0, 1.0, 0.0, 1.0), (0.5, 1.3, -1.0, 0.7), (-2.0, 0.3, 1.5, 2.5), (3.0, 0.2, 3.1, 0.25)]


@pytest.mark.parametrize("m_p, s_p, mu, sigma", GAUSSIAN_CASES)
def test_quadrature_matches_the_closed_form_for_a_gaussian_target(m_p, s_p, mu, sigma):
    w = KLExplorer(mu, sigma, p_weights=[1.0], p_means=[m_p], p_sigmas=[s_p])
    got = w.quadrature()
    assert got["forward"] == pytest.approx(kl_normal_1d(m_p, s_p, mu, sigma), abs=1e-9)
    assert got["reverse"] == pytest.approx(kl_normal_1d(mu, sigma, m_p, s_p), abs=1e-9)


def _mixture_logpdf(x, w, m, s):
    w = np.asarray(w) / np.sum(w)
    return np.log(np.sum([wk * stats.norm.pdf(x, mk, sk) for wk, mk, sk in zip(w, m, s)], axis=0))


@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (2.0, 0.6), (-1.0, 2.5), (4.0, 0.4)])
def test_quadrature_matches_adaptive_quadrature_for_a_bimodal_target(mu, sigma):
    w = KLExplorer(mu, sigma, p_weights=[0.3, 0.7], p_means=[-2.0, 1.5], p_sigmas=[0.6, 0.9])
    lp = lambda x: _mixture_logpdf(x, w.p_weights, w.p_means, w.p_sigmas)  # noqa: E731
    lq = lambda x: stats.norm.logpdf(x, mu, sigma)  # noqa: E731
    points = [-2.0, 1.5, mu]
    fwd = integrate.quad(lambda x: np.exp(lp(x)) * (lp(x) - lq(x)), -25, 25, points=points, limit=200)[0]
    rev = integrate.quad(lambda x: np.exp(lq(x)) * (lq(x) - lp(x)), -25, 25, points=points, limit=200)[0]
    got = w.quadrature()
    assert got["forward"] == pytest.approx(fwd, abs=1e-7)
    assert got["reverse"] == pytest.approx(rev, abs=1e-7)


def test_forward_kl_fit_matches_moments_and_reverse_kl_fit_finds_a_mode():
    """argmin KL(p||q) over Gaussians q is moment matching; argmin KL(q||p) sits on one well-separated mode."""
    w = KLExplorer(p_weights=[0.5, 0.5], p_means=[-2.0, 2.0], p_sigmas=[0.6, 0.6])
    fwd = optimize.minimize(lambda t: w.quadrature(t[0], math.exp(t[1]))["forward"], x0=[0.7, 0.0],
                            method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-10})
    mean = 0.0
    std = math.sqrt(0.6 ** 2 + 2.0 ** 2)   # variance of the mixture: within-component + between-component
    assert fwd.x[0] == pytest.approx(mean, abs=1e-3)
    assert math.exp(fwd.x[1]) == pytest.approx(std, abs=1e-3)
    for start in (1.0, -1.0):
        rev = optimize.minimize(lambda t: w.quadrature(t[0], math.exp(t[1]))["reverse"], x0=[start, 0.0],
                                method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-10})
        # Near, not exactly on, the mode: the other component's tail pulls it by a few thousandths.
        assert rev.x[0] == pytest.approx(2.0 * np.sign(start), abs=0.01)
        assert math.exp(rev.x[1]) == pytest.approx(0.6, abs=0.01)
        assert rev.fun == pytest.approx(math.log(2), abs=0.01)   # q on one of two equal modes: KL ~ log 2


def test_explorers_reject_bad_input():
    with pytest.raises(ValueError, match="sigma"):
        KLExplorer(sigma=0.0)
    with pytest.raises(ValueError, match="same length"):
        KLExplorer(p_weights=[1.0], p_means=[0.0, 1.0], p_sigmas=[1.0])
    with pytest.raises(ValueError, match="p_sigmas"):
        KLExplorer(p_sigmas=[0.6, -1.0])
    with pytest.raises(ValueError, match="prior"):
        BayesExplorer(prior=1.0)
    with pytest.raises(ValueError, match="sigma1"):
        BayesExplorer(sigma1=-1.0)


# --- the JavaScript itself -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, widget_class", [("bayes", BayesExplorer), ("kl", KLExplorer)])
def test_widget_javascript_follows_the_conventions(name, widget_class):
    src = check_conventions(name, widget_class)
    assert "sliderTable(side, uid," in src and 'setAttribute("aria-label"' in src


@needs_node
def test_kl_javascript_matches_the_closed_form_and_the_python_rule(tmp_path):
    cases = [dict(q=dict(mu=mu, sigma=sigma), p=dict(weights=[1.0], means=[m_p], sigmas=[s_p]))
             for m_p, s_p, mu, sigma in GAUSSIAN_CASES]
    cases.append(dict(q=dict(mu=0.7, sigma=1.1), p=dict(weights=[0.3, 0.7], means=[-2.0, 1.5], sigmas=[0.6, 0.9])))
    got = run_node(tmp_path, "kl", "console.log(JSON.stringify(s.map((c) => m.klQuadrature(c.q, c.p, 2001))));", cases)
    for case, (m_p, s_p, mu, sigma), js in zip(cases, GAUSSIAN_CASES, got):
        assert js["forward"] == pytest.approx(kl_normal_1d(m_p, s_p, mu, sigma), abs=1e-9)
        assert js["reverse"] == pytest.approx(kl_normal_1d(mu, sigma, m_p, s_p), abs=1e-9)
    for case, js in zip(cases, got):
        w = KLExplorer(case["q"]["mu"], case["q"]["sigma"], p_weights=case["p"]["weights"],
                       p_means=case["p"]["means"], p_sigmas=case["p"]["sigmas"])
        py = w.quadrature()
        assert js["forward"] == pytest.approx(py["forward"], abs=1e-12)
        assert js["reverse"] == pytest.approx(py["reverse"], abs=1e-12)


@needs_node
def test_bayes_javascript_matches_scipy_and_the_logistic_form(tmp_path):
    states = [dict(prior=0.3, mu0=-1.0, sigma0=1.0, mu1=1.5, sigma1=0.7),
              dict(prior=0.8, mu0=0.5, sigma0=2.0, mu1=-0.5, sigma1=0.4),
              dict(prior=0.1, mu0=-1.0, sigma0=0.8, mu1=2.0, sigma1=0.8)]   # equal variances: logistic posterior
    xs = [-4.0, -1.0, 0.0, 0.3, 2.0, 4.5, 40.0]
    got = run_node(tmp_path, "bayes",
                "console.log(JSON.stringify(s.states.map((st) => s.xs.map((x) => m.bayes(x, st)))));",
                dict(states=states, xs=xs))
    for st, rows in zip(states, got):
        for x, js in zip(xs, rows):
            lik0, lik1 = stats.norm.pdf(x, st["mu0"], st["sigma0"]), stats.norm.pdf(x, st["mu1"], st["sigma1"])
            log_odds = (math.log(st["prior"]) + stats.norm.logpdf(x, st["mu1"], st["sigma1"])
                        - math.log(1 - st["prior"]) - stats.norm.logpdf(x, st["mu0"], st["sigma0"]))
            assert js["lik0"] == pytest.approx(lik0, rel=1e-12, abs=1e-300)
            assert js["lik1"] == pytest.approx(lik1, rel=1e-12, abs=1e-300)
            assert js["evidence"] == pytest.approx((1 - st["prior"]) * lik0 + st["prior"] * lik1, rel=1e-12,
                                                   abs=1e-300)
            assert js["post1"] == pytest.approx(expit(log_odds), rel=1e-9, abs=1e-12)
    # Equal variances: p(y=1|x) = sigmoid(w x + b), w = (mu1 - mu0) / s^2, b = (mu0^2 - mu1^2) / (2 s^2) + log(pi/(1-pi)).
    st = states[2]
    s2 = st["sigma0"] ** 2
    w, b = (st["mu1"] - st["mu0"]) / s2, (st["mu0"] ** 2 - st["mu1"] ** 2) / (2 * s2) + math.log(st["prior"] / (1 - st["prior"]))
    for x, js in zip(xs, got[2]):
        assert js["post1"] == pytest.approx(expit(w * x + b), rel=1e-9, abs=1e-12)
