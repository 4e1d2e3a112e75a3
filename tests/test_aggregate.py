"""vaelib.aggregate: the aggregate posterior q(z) and the split E_n KL(q(z|x_n) || p) = I_q + KL(q(z) || p).

Oracles: torch.distributions' mixture density; closed-form Gaussian KLs where the mixture is one Gaussian (one
component, or N equal components: I_q = 0); q(z|x_n) = p(z) for every n (everything is 0, exactly); well separated
components (I_q = log N); and for a small 2-D mixture, KL(q(z) || p(z)) by quadrature on a fine grid.
"""
from __future__ import annotations

import math

import pytest
import torch

from vaelib import gaussian_kl
from vaelib.aggregate import (KLDecomposition, aggregate_kl, log_aggregate_posterior, log_standard_normal,
                              sample_aggregate_posterior)
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
