"""vaelib.aggregate: the aggregate posterior q(z), the split E_n KL(q(z|x_n) || p) = I_q + KL(q(z) || p), and the
total correlation of q(z).

Oracles: torch.distributions' mixture density; closed-form Gaussian KLs where the mixture is one Gaussian (one
component, or N equal components: I_q = 0); q(z|x_n) = p(z) for every n (everything is 0, exactly); well separated
components (I_q = log N); and for a small 2-D mixture, KL(q(z) || p(z)) by quadrature on a fine grid. Total
correlation: exact factorisation (zero draw by draw), quadrature (of the total correlation itself, and of the mutual
informations in TC = sum_j I(n; z_j) - I(n; z)), separated narrow components (TC = (D - 1) log N, shuffled or not),
and the closed form of a Gaussian, -1/2 log det R.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaelib import gaussian_kl
from vaelib.aggregate import (KLDecomposition, aggregate_covariance, aggregate_kl, gaussian_total_correlation,
                              log_aggregate_posterior, log_standard_normal, sample_aggregate_posterior,
                              total_correlation)
from vaelib.losses import gaussian_kl_two

D = torch.distributions


def _mixture(mu, logvar):
    n = len(mu)
    comps = D.Independent(D.Normal(mu, torch.exp(0.5 * logvar)), 1)
    return D.MixtureSameFamily(D.Categorical(torch.full((n,), 1.0 / n, dtype=mu.dtype)), comps)


def _random(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) * 1.5,
            torch.randn(n, d, generator=g, dtype=torch.float64) - 1.0)


@pytest.mark.parametrize("n, d", [(1, 2), (7, 2), (50, 3), (3, 20)])
def test_log_density_matches_torch_mixture(n, d):
    mu, logvar = _random(n, d)
    z = torch.randn(300, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2
    np_ = log_aggregate_posterior(z, mu, logvar)
    assert np_.shape == (300,) and np_.dtype == torch.float64
    torch.testing.assert_close(np_, _mixture(mu, logvar).log_prob(z), atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(log_standard_normal(z), D.MultivariateNormal(torch.zeros(d, dtype=torch.float64),
                               torch.eye(d, dtype=torch.float64)).log_prob(z), atol=1e-12, rtol=0)


def test_chunking_does_not_change_the_result(monkeypatch):
    import vaelib.aggregate as agg

    mu, logvar = _random(40, 2)
    z = torch.randn(101, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    whole = log_aggregate_posterior(z, mu, logvar)
    monkeypatch.setattr(agg, "PAIRS_PER_CHUNK", 40 * 7)   # chunks of 7 points, the last one short
    torch.testing.assert_close(log_aggregate_posterior(z, mu, logvar), whole, atol=1e-12, rtol=0)


def test_far_from_every_component_the_log_sum_exp_stays_finite():
    mu = torch.zeros(3, 2, dtype=torch.float64)
    logvar = torch.full((3, 2), -12.0, dtype=torch.float64)   # sigma = 0.0025: exp underflows at z = 5
    out = log_aggregate_posterior(torch.tensor([[5.0, 0.0]], dtype=torch.float64), mu, logvar)
    want = -0.5 * 25 / math.exp(-12) - math.log(2 * math.pi) + 12.0    # one Gaussian, by hand
    assert math.isfinite(out.item()) and out.item() == pytest.approx(want, rel=1e-12)


def test_samples_follow_the_mixture():
    mu = torch.tensor([[-3.0, 0.0], [3.0, 1.0]], dtype=torch.float64)
    logvar = torch.log(torch.tensor([[0.25, 1.0], [1.0, 0.04]], dtype=torch.float64))
    z = sample_aggregate_posterior(mu, logvar, 200_000, torch.Generator().manual_seed(0))
    assert z.shape == (200_000, 2) and z.dtype == torch.float64
    left = z[:, 0] < 0
    assert left.double().mean().item() == pytest.approx(0.5, abs=0.005)       # both components equally often
    assert z[left].mean(0).tolist() == pytest.approx([-3.0, 0.0], abs=0.01)
    assert z[left].std(0).tolist() == pytest.approx([0.5, 1.0], abs=0.01)
    assert z[~left].std(0).tolist() == pytest.approx([1.0, 0.2], abs=0.01)


def test_posteriors_equal_to_the_prior_give_zero_everywhere():
    mu, logvar = torch.zeros(500, 2), torch.zeros(500, 2)
    out = aggregate_kl(mu, logvar, n_samples=1000, generator=torch.Generator().manual_seed(0))
    assert isinstance(out, KLDecomposition)
    assert out.average_kl == 0 and abs(out.marginal_kl) < 1e-12 and abs(out.mutual_information) < 1e-12
    assert out.log_n == pytest.approx(math.log(500))


@pytest.mark.parametrize("copies", [1, 25])
def test_one_gaussian_has_no_mutual_information_and_its_closed_form_kl(copies):
    mu = torch.tensor([[1.2, -0.7]], dtype=torch.float64).repeat(copies, 1)
    logvar = torch.tensor([[-1.5, 0.4]], dtype=torch.float64).repeat(copies, 1)
    exact = gaussian_kl_two(mu[:1], logvar[:1], torch.zeros(2, dtype=torch.float64),
                            torch.zeros(2, dtype=torch.float64)).item()
    out = aggregate_kl(mu, logvar, n_samples=40_000, generator=torch.Generator().manual_seed(3))
    assert out.average_kl == pytest.approx(exact, rel=1e-12)
    assert abs(out.marginal_kl - exact) < 4 * out.marginal_kl_se and 0 < out.marginal_kl_se < 0.02
    assert abs(out.mutual_information) < 4 * out.marginal_kl_se


def test_separated_components_carry_log_n_nats():
    n = 16
    grid = torch.stack(torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij"), -1).reshape(n, 2)
    mu = (grid - 1.5).double()                        # spacing 1, sigma 0.01: no overlap at all
    logvar = torch.full((n, 2), 2 * math.log(0.01), dtype=torch.float64)
    out = aggregate_kl(mu, logvar, n_samples=4000, generator=torch.Generator().manual_seed(4))
    # log q(z) = log q(z|x_n) - log N at every draw: I_q is log N up to the Monte Carlo error of the KLs
    assert abs(out.mutual_information - math.log(n)) < 4 * out.marginal_kl_se < 0.1
    assert out.log_n == pytest.approx(math.log(n))
    assert out.average_kl == pytest.approx(gaussian_kl(mu, logvar).mean().item(), rel=1e-12)


def test_marginal_kl_matches_quadrature_on_a_grid():
    mu = torch.tensor([[-1.0, 0.5], [0.8, 0.9], [0.3, -1.2]], dtype=torch.float64)
    logvar = torch.log(torch.tensor([[0.3, 0.5], [0.2, 0.6], [0.7, 0.15]], dtype=torch.float64))
    side = torch.linspace(-8, 8, 1601, dtype=torch.float64)
    g1, g2 = torch.meshgrid(side, side, indexing="ij")
    z = torch.stack([g1.reshape(-1), g2.reshape(-1)], 1)
    lq = _mixture(mu, logvar).log_prob(z)             # independent of vaelib
    lp = -0.5 * (z ** 2).sum(1) - math.log(2 * math.pi)
    h = (side[1] - side[0]).item()
    quad = (lq.exp() * (lq - lp)).sum().item() * h * h
    out = aggregate_kl(mu, logvar, n_samples=200_000, generator=torch.Generator().manual_seed(5))
    assert abs(out.marginal_kl - quad) < 4 * out.marginal_kl_se and out.marginal_kl_se < 0.01
    # The split holds with I_q between 0 and log 3.
    assert out.average_kl == pytest.approx(out.mutual_information + out.marginal_kl, abs=1e-12)
    assert 0 < out.mutual_information < math.log(3)


def test_float32_inputs_and_a_fixed_generator_give_reproducible_numbers():
    mu, logvar = _random(30, 2)
    a = aggregate_kl(mu.float(), logvar.float(), n_samples=500, generator=torch.Generator().manual_seed(7))
    b = aggregate_kl(mu.float(), logvar.float(), n_samples=500, generator=torch.Generator().manual_seed(7))
    assert a == b


@pytest.mark.parametrize("call, match", [
    (lambda: log_aggregate_posterior(torch.zeros(3, 2), torch.zeros(4, 2), torch.zeros(4, 3)), r"shape \(N, D\)"),
    (lambda: log_aggregate_posterior(torch.zeros(3, 3), torch.zeros(4, 2), torch.zeros(4, 2)), r"shape \(M, 2\)"),
    (lambda: log_aggregate_posterior(torch.zeros(3, 2), torch.zeros(0, 2), torch.zeros(0, 2)), r"shape \(N, D\)"),
    (lambda: log_aggregate_posterior(torch.full((1, 2), math.nan), torch.zeros(4, 2), torch.zeros(4, 2)), "finite"),
    (lambda: aggregate_kl(torch.zeros(4, 2), torch.full((4, 2), math.inf)), "finite"),
    (lambda: aggregate_kl(torch.zeros(4, 2), torch.zeros(4, 2), n_samples=1), "n_samples"),
    (lambda: sample_aggregate_posterior(torch.zeros(4, 2), torch.zeros(4, 2), 0), "positive integer"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- total correlation (chapter 7)

def test_marginal_log_densities_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(37, 3, generator=g, dtype=torch.float64) * 2
    logvar = torch.randn(37, 3, generator=g, dtype=torch.float64) * 0.5
    z = torch.randn(11, 3, generator=g, dtype=torch.float64) * 3
    torch.testing.assert_close(log_aggregate_posterior(z, mu, logvar), _mixture(mu, logvar).log_prob(z))
    marg = log_aggregate_posterior(z, mu, logvar, marginals=True)
    for j in range(3):
        mj = _mixture(mu[:, j:j + 1], logvar[:, j:j + 1])
        torch.testing.assert_close(marg[:, j], mj.log_prob(z[:, j:j + 1]))


def test_factorised_mixture_has_zero_total_correlation_draw_by_draw():
    # Components on a product grid, variances depending on each coordinate's own index: q(z) = q_1(z_1) q_2(z_2).
    a, s = torch.tensor([-2.0, 0.5, 3.0]), torch.tensor([0.3, 1.0, 0.6])
    b, t = torch.tensor([-1.0, 1.5]), torch.tensor([0.8, 0.2])
    i, k = torch.meshgrid(torch.arange(3), torch.arange(2), indexing="ij")
    mu = torch.stack([a[i.flatten()], b[k.flatten()]], 1).double()
    logvar = torch.stack([s[i.flatten()], t[k.flatten()]], 1).double().pow(2).log()
    terms = total_correlation(mu, logvar, samples=500, generator=torch.Generator().manual_seed(2))
    assert terms.shape == (6 * 500,)
    assert terms.abs().max() < 1e-9


def test_two_component_mixture_against_quadrature():
    mu = torch.tensor([[-1.5, -1.0], [1.5, 1.2]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -0.5], [-0.7, 0.3]], dtype=torch.float64)
    q = _mixture(mu, logvar)
    q1, q2 = _mixture(mu[:, :1], logvar[:, :1]), _mixture(mu[:, 1:], logvar[:, 1:])
    grid = torch.linspace(-9, 9, 1201, dtype=torch.float64)
    h = (grid[1] - grid[0]).item()
    z1, z2 = torch.meshgrid(grid, grid, indexing="ij")
    pts = torch.stack([z1.flatten(), z2.flatten()], 1)
    log_q = q.log_prob(pts)
    integrand = log_q.exp() * (log_q - q1.log_prob(pts[:, :1]) - q2.log_prob(pts[:, 1:]))
    exact = integrand.sum().item() * h * h
    assert 0.2 < exact < 1.0  # a clearly dependent pair
    terms = total_correlation(mu, logvar, samples=100_000, generator=torch.Generator().manual_seed(3))
    se = terms.std().item() / math.sqrt(len(terms))
    assert abs(terms.mean().item() - exact) < 4 * se + 1e-3
    assert se < 0.01


def test_many_broad_components_approach_the_gaussian_closed_form():
    # Means drawn from N(0, C0), every component N(mu_n, s^2 I): as N grows q(z) -> N(0, C0 + s^2 I).
    c0 = torch.tensor([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 1.0]], dtype=torch.float64)
    s2 = 0.5
    g = torch.Generator().manual_seed(4)
    n = 1000
    mu = torch.randn(n, 3, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(c0).T
    logvar = torch.full((n, 3), math.log(s2), dtype=torch.float64)
    cov = c0 + s2 * torch.eye(3, dtype=torch.float64)
    target = gaussian_total_correlation(cov)
    assert 0.2 < target < 0.25
    terms = total_correlation(mu, logvar, samples=4, generator=g)
    se = terms.std().item() / math.sqrt(len(terms))
    assert abs(terms.mean().item() - target) < 4 * se + 0.02
    # The exact covariance of this finite mixture, and its Gaussian total correlation, are close to the target too.
    torch.testing.assert_close(aggregate_covariance(mu, logvar), cov, atol=0.1, rtol=0)
    assert abs(gaussian_total_correlation(aggregate_covariance(mu, logvar)) - target) < 0.03


def test_shuffling_dimensions_removes_the_dependence():
    c0 = torch.tensor([[1.0, 0.9], [0.9, 1.0]], dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    mu = torch.randn(1000, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(c0).T
    logvar = torch.full((1000, 2), math.log(0.3), dtype=torch.float64)
    dependent = total_correlation(mu, logvar, generator=g).mean().item()
    shuffled = total_correlation(mu, logvar, generator=g, shuffle=True).mean().item()
    assert dependent > 0.3 and abs(shuffled) < 0.05


def test_mixture_total_correlation_is_the_per_dimension_information_minus_the_joint():
    # Chapter 7: for factorised components, TC of the mixture = sum_j I(n; z_j) - I(n; z), n the component's index.
    # The mutual informations by quadrature, I(n; z) = (1/N) sum_n int q_n log(q_n / q), against vaelib's Monte Carlo.
    mu = torch.tensor([[-1.0, -0.8], [0.3, 1.1], [1.4, -0.2]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -0.6], [-0.9, 0.2], [-0.3, -1.0]], dtype=torch.float64)
    comps = D.Normal(mu, torch.exp(0.5 * logvar))                                   # (3, 2) one-dimensional factors
    grid = torch.linspace(-10, 10, 1601, dtype=torch.float64)
    h = (grid[1] - grid[0]).item()

    def info(log_qn):
        """I(n; z) from the components' log densities on the grid points, (N, points); the grid's cell is h^d."""
        log_q = torch.logsumexp(log_qn, 0) - math.log(len(log_qn))
        return (log_qn.exp() * (log_qn - log_q)).sum().item() / len(log_qn)

    per_dim = [info(comps.log_prob(grid[:, None, None])[:, :, j].T) * h for j in range(2)]
    z1, z2 = torch.meshgrid(grid, grid, indexing="ij")
    pts = torch.stack([z1.flatten(), z2.flatten()], 1)
    joint = info(comps.log_prob(pts[:, None, :]).sum(-1).T) * h * h
    identity = sum(per_dim) - joint
    assert 0.05 < identity < 1.0 and joint < math.log(3)
    terms = total_correlation(mu, logvar, samples=100_000, generator=torch.Generator().manual_seed(8))
    se = terms.std().item() / math.sqrt(len(terms))
    assert abs(terms.mean().item() - identity) < 4 * se + 1e-3 and se < 0.01


def test_narrow_separated_components_give_lumpiness_not_dependence():
    # N narrow components, each coordinate of each mean distinct: every z_j alone names the component, so
    # I(n; z_j) = I(n; z) = log N and TC = (D - 1) log N, with the dimensions shuffled or not (chapter 7).
    n, d = 8, 3
    g = torch.Generator().manual_seed(9)
    mu = torch.stack([torch.randperm(n, generator=g) for _ in range(d)], 1).double() * 3.0
    logvar = torch.full((n, d), math.log(1e-4), dtype=torch.float64)
    for shuffle in (False, True):
        tc = total_correlation(mu, logvar, samples=200, generator=g, shuffle=shuffle).mean().item()
        assert tc == pytest.approx((d - 1) * math.log(n), abs=1e-6)


def test_gaussian_total_correlation_against_entropies():
    g = torch.Generator().manual_seed(6)
    a = torch.randn(5, 5, generator=g, dtype=torch.float64)
    cov = a @ a.T + 0.5 * torch.eye(5, dtype=torch.float64)
    joint = D.MultivariateNormal(torch.zeros(5, dtype=torch.float64), covariance_matrix=cov).entropy()
    marginals = D.Normal(torch.zeros(5, dtype=torch.float64), cov.diagonal().sqrt()).entropy().sum()
    assert gaussian_total_correlation(cov) == pytest.approx((marginals - joint).item(), abs=1e-10)
    rho = 0.6
    assert gaussian_total_correlation(torch.tensor([[2.0, rho * 2.0], [rho * 2.0, 2.0]])) == pytest.approx(
        -0.5 * math.log(1 - rho ** 2), abs=1e-6)
    assert gaussian_total_correlation(torch.diag(torch.tensor([1.0, 4.0, 0.1]))) == 0.0


def test_aggregate_covariance_against_samples():
    g = torch.Generator().manual_seed(7)
    mu = torch.randn(5, 3, generator=g, dtype=torch.float64) * 2
    logvar = torch.randn(5, 3, generator=g, dtype=torch.float64) * 0.3
    draws = _mixture(mu, logvar).sample((400_000,))
    np.testing.assert_allclose(aggregate_covariance(mu, logvar).numpy(), np.cov(draws.numpy().T), atol=0.05)


@pytest.mark.parametrize("mu, logvar, match", [
    (torch.zeros(3, 2), torch.zeros(3, 3), "same shape"),
    (torch.zeros(3), torch.zeros(3), "same shape"),
    (torch.zeros(0, 2), torch.zeros(0, 2), "N, D >= 1"),
    (torch.tensor([[0.0, float("nan")]]), torch.zeros(1, 2), "finite"),
])
def test_bad_gaussians_are_refused(mu, logvar, match):
    with pytest.raises(ValueError, match=match):
        total_correlation(mu, logvar)


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="float tensor"):
        aggregate_covariance(torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="samples"):
        total_correlation(torch.zeros(3, 2), torch.zeros(3, 2), samples=0)
    with pytest.raises(ValueError, match=r"\(M, 2\)"):
        log_aggregate_posterior(torch.zeros(4, 3), torch.zeros(3, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="square"):
        gaussian_total_correlation(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="positive definite"):
        gaussian_total_correlation(torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
