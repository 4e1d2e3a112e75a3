"""vaelib.aggregate against independent oracles: torch.distributions mixtures, quadrature on a grid, exact
factorisation, and the closed-form total correlation of a Gaussian."""
import math

import numpy as np
import pytest
import torch
from torch import distributions as D

from vaelib.aggregate import (aggregate_covariance, aggregate_log_density, gaussian_total_correlation,
                              total_correlation)


def mixture(mu, logvar):
    """The equal-weight mixture of diagonal Gaussians, by torch.distributions."""
    n = mu.shape[0]
    comp = D.Independent(D.Normal(mu, torch.exp(0.5 * logvar)), 1)
    return D.MixtureSameFamily(D.Categorical(torch.full((n,), 1.0 / n, dtype=mu.dtype)), comp)


def test_log_density_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(37, 3, generator=g, dtype=torch.float64) * 2
    logvar = torch.randn(37, 3, generator=g, dtype=torch.float64) * 0.5
    z = torch.randn(11, 3, generator=g, dtype=torch.float64) * 3
    torch.testing.assert_close(aggregate_log_density(z, mu, logvar), mixture(mu, logvar).log_prob(z))
    marg = aggregate_log_density(z, mu, logvar, marginals=True)
    for j in range(3):
        mj = mixture(mu[:, j:j + 1], logvar[:, j:j + 1])
        torch.testing.assert_close(marg[:, j], mj.log_prob(z[:, j:j + 1]))


def test_log_density_chunks_give_the_same_answer(monkeypatch):
    import vaelib.aggregate as agg
    g = torch.Generator().manual_seed(1)
    mu, logvar, z = (torch.randn(50, 4, generator=g) for _ in range(3))
    whole = aggregate_log_density(z, mu, logvar)
    monkeypatch.setattr(agg, "_CHUNK_ELEMENTS", 7)  # one point per chunk
    torch.testing.assert_close(aggregate_log_density(z, mu, logvar), whole)


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
    q = mixture(mu, logvar)
    q1, q2 = mixture(mu[:, :1], logvar[:, :1]), mixture(mu[:, 1:], logvar[:, 1:])
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
    draws = mixture(mu, logvar).sample((400_000,))
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
        aggregate_log_density(torch.zeros(4, 3), torch.zeros(3, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="square"):
        gaussian_total_correlation(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="positive definite"):
        gaussian_total_correlation(torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
