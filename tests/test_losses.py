"""The losses against independent oracles: torch.distributions, quadrature on a 1-D latent, analytic gradients."""
import math

import pytest
import torch

from vaelib import VAE, elbo, elbo_terms, gaussian_kl, iwae_log_likelihood, log_likelihood


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_gaussian_kl_matches_torch_distributions():
    mu, logvar = torch.randn(64, 7), torch.randn(64, 7)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p)
    torch.testing.assert_close(gaussian_kl(mu, logvar, per_dim=True), expected)
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected.sum(-1))
    assert gaussian_kl(mu, logvar).shape == (64,)


def test_free_bits_kl_floors_each_dimension_s_batch_mean():
    from vaelib import free_bits_kl

    kl = torch.tensor([[0.1, 2.0, 0.5, 3.0], [0.3, 1.0, 0.5, 1.0]], requires_grad=True)   # batch means .2 1.5 .5 2
    value = free_bits_kl(kl, 0.6)
    assert value.item() == pytest.approx(0.6 + 1.5 + 0.6 + 2.0)
    (grad,) = torch.autograd.grad(value, kl)
    # Dimensions below the floor get no gradient; the others that of the batch mean, 1/B per example.
    torch.testing.assert_close(grad, torch.tensor([[0.0, 0.5, 0.0, 0.5]] * 2))
    assert free_bits_kl(kl, 0.0).item() == pytest.approx(kl.sum(-1).mean().item())
    with pytest.raises(ValueError, match="free_bits"):
        free_bits_kl(kl, -0.1)
    with pytest.raises(ValueError, match=r"shape \(B, D\)"):
        free_bits_kl(kl.sum(-1), 0.5)


def test_elbo_terms_per_dimension_match_torch_distributions():
    model = VAE(6, hidden=(5,), latent_dim=3)
    x = torch.bernoulli(torch.full((8, 6), 0.4))
    torch.manual_seed(3)
    log_px_z, kl_dims = elbo_terms(model, x, per_dim=True)
    torch.manual_seed(3)
    same_log_px_z, kl = elbo_terms(model, x)
    mu, logvar = model.encode(x)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    expected = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0))
    assert kl_dims.shape == (8, 3)
    torch.testing.assert_close(kl_dims, expected)
    torch.testing.assert_close(kl, expected.sum(-1))
    torch.testing.assert_close(log_px_z, same_log_px_z)


def test_gaussian_kl_is_zero_only_at_the_prior():
    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max() == 0
    assert (gaussian_kl(torch.full((3, 4), 0.1), torch.zeros(3, 4)) > 0).all()


def test_bernoulli_log_likelihood_matches_torch_distributions():
    model = VAE(6, hidden=(5,), latent_dim=2)
    logits, x = torch.randn(10, 6), torch.bernoulli(torch.full((10, 6), 0.3))
    expected = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
    torch.testing.assert_close(log_likelihood(model, logits, x), expected)


def test_gaussian_log_likelihood_matches_torch_distributions():
    model = VAE(6, hidden=(5,), latent_dim=2, likelihood="gaussian")
    with torch.no_grad():
        model.decoder_logvar.copy_(torch.linspace(-2, 1, 6))
    mean, x = torch.rand(10, 6), torch.rand(10, 6)
    expected = torch.distributions.Normal(mean, torch.exp(0.5 * model.decoder_logvar)).log_prob(x).sum(-1)
    torch.testing.assert_close(log_likelihood(model, mean, x), expected)


# A VAE with a 1-D latent: log p(x) = log ∫ p(x|z) N(z; 0, 1) dz is computed exactly enough by quadrature.
def _toy_model_and_data(poor_q=False):
    torch.manual_seed(1)
    model = VAE(5, hidden=(8,), latent_dim=1).double()
    if poor_q:
        with torch.no_grad():  # move q(z|x) away from the posterior, so that the bounds have a wide gap
            model.to_mu.bias += 1.0
            model.to_logvar.bias -= 1.0
    x = torch.bernoulli(torch.full((4, 5), 0.5)).double()
    return model, x


def _quadrature(model, x, n=20001, lim=12.0):
    """log p(x) and log p(z|x) on a grid of z, by the trapezoid rule."""
    z = torch.linspace(-lim, lim, n, dtype=torch.float64)[:, None]
    with torch.no_grad():
        logits = model.decode(z)                                               # (n, in_dim)
        log_px_z = torch.stack([log_likelihood(model, logits, xi.expand_as(logits)) for xi in x])  # (B, n)
    log_joint = log_px_z - 0.5 * (math.log(2 * math.pi) + z[:, 0] ** 2)
    dz = (z[1, 0] - z[0, 0]).item()
    log_px = torch.logsumexp(log_joint, dim=1) + math.log(dz)
    return z[:, 0], log_px, log_joint - log_px[:, None]


@pytest.mark.parametrize("poor_q", [False, True])
def test_elbo_is_below_log_px_and_the_gap_is_the_kl_to_the_true_posterior(poor_q):
    model, x = _toy_model_and_data(poor_q)
    z, log_px, log_post = _quadrature(model, x)
    with torch.no_grad():
        bound = elbo(model, x, samples=20000)
        mu, logvar = model.encode(x)
    assert (bound < log_px).all()
    # Oracle for the gap: KL(q(z|x) || p(z|x)) by quadrature against the exact posterior.
    log_q = -0.5 * (math.log(2 * math.pi) + logvar + (z[None] - mu) ** 2 / logvar.exp())
    dz = (z[1] - z[0]).item()
    kl_to_posterior = (log_q.exp() * (log_q - log_post)).sum(1) * dz
    torch.testing.assert_close(log_px - bound, kl_to_posterior, atol=0.03, rtol=0.0)


def test_iwae_tightens_as_k_grows():
    model, x = _toy_model_and_data(poor_q=True)
    _, log_px, _ = _quadrature(model, x)
    means = []
    for k in (1, 10, 100, 1000):
        torch.manual_seed(2)
        means.append(torch.stack([iwae_log_likelihood(model, x, k=k) for _ in range(200)]).mean(0))
    for a, b in zip(means, means[1:]):
        assert (b > a).all(), (a, b)
    assert (means[-1] < log_px).all()
    assert (log_px - means[0] > 0.2).all() and (log_px - means[-1] < (log_px - means[0]) / 3).all()


def test_iwae_approaches_log_px():
    model, x = _toy_model_and_data()
    _, log_px, _ = _quadrature(model, x)
    torch.testing.assert_close(iwae_log_likelihood(model, x, k=5000), log_px, atol=0.02, rtol=0.0)


def test_iwae_batching_bounds_memory_and_gives_the_same_estimate():
    model, x = _toy_model_and_data()
    _, log_px, _ = _quadrature(model, x)
    small = iwae_log_likelihood(model, x, k=3000, batch_size=700)   # k split into chunks of 700 samples
    large = iwae_log_likelihood(model, x, k=3000, batch_size=10**6)  # every example's k samples at once
    torch.testing.assert_close(small, log_px, atol=0.03, rtol=0.0)
    torch.testing.assert_close(large, log_px, atol=0.03, rtol=0.0)


def test_elbo_with_k_equal_one_is_an_unbiased_estimate_of_the_elbo():
    model, x = _toy_model_and_data()
    with torch.no_grad():
        torch.manual_seed(3)
        iwae1 = torch.stack([iwae_log_likelihood(model, x, k=1) for _ in range(4000)]).mean(0)
        torch.manual_seed(4)
        reference = elbo(model, x, samples=4000)
    torch.testing.assert_close(iwae1, reference, atol=0.05, rtol=0.0)


def test_elbo_terms_and_beta():
    model, x = _toy_model_and_data()
    torch.manual_seed(5)
    log_px_z, kl = elbo_terms(model, x)
    torch.manual_seed(5)
    torch.testing.assert_close(elbo(model, x, beta=3.0), log_px_z - 3.0 * kl)
    with pytest.raises(ValueError, match="samples"):
        elbo(model, x, samples=0)
    with pytest.raises(ValueError, match="k must"):
        iwae_log_likelihood(model, x, k=0)


@pytest.mark.parametrize("f, grad_mu, grad_logvar", [
    # E[z^2] = mu^2 + s2, E[exp z] = exp(mu + s2 / 2), with s2 = exp(logvar).
    (lambda z: z ** 2, lambda mu, s2: 2 * mu, lambda mu, s2: s2),
    (torch.exp, lambda mu, s2: torch.exp(mu + s2 / 2), lambda mu, s2: torch.exp(mu + s2 / 2) * s2 / 2),
])
def test_reparameterised_gradient_matches_the_analytic_gradient(f, grad_mu, grad_logvar):
    mu = torch.tensor([0.3, -0.7], dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([-0.5, 0.2], dtype=torch.float64, requires_grad=True)
    z = VAE.reparameterize(mu.expand(400000, 2), logvar.expand(400000, 2))
    f(z).mean(0).sum().backward()
    s2 = logvar.detach().exp()
    torch.testing.assert_close(mu.grad, grad_mu(mu.detach(), s2), atol=0.02, rtol=0.01)
    torch.testing.assert_close(logvar.grad, grad_logvar(mu.detach(), s2), atol=0.02, rtol=0.01)


# ---------------------------------------------------------------- the losses refuse what fit refuses
from vaelib import Autoencoder, active_units, reconstruction_loss  # noqa: E402

BAD_DATA = {  # name: (images, what the message says)
    "0-255 pixels": (lambda x: x * 255, r"\[0, 1\].*divide by 255"),
    "negative": (lambda x: x - 0.5, r"\[0, 1\]"),
    "nan": (lambda x: x.index_fill(0, torch.tensor([1]), float("nan")), "NaN or infinite"),
    "inf": (lambda x: x.index_fill(0, torch.tensor([1]), float("inf")), "NaN or infinite"),
}
VAE_FUNCTIONS = {
    "elbo": lambda m, x: elbo(m, x),
    "elbo_terms": lambda m, x: elbo_terms(m, x),
    "iwae_log_likelihood": lambda m, x: iwae_log_likelihood(m, x, k=3),
    "active_units": lambda m, x: active_units(m, x),
    "log_likelihood": lambda m, x: log_likelihood(m, m.decode(torch.zeros(len(x), m.latent_dim)), x),
}


def _vae():
    return VAE(64, hidden=(16,), latent_dim=3)


@pytest.mark.parametrize("case", BAD_DATA)
@pytest.mark.parametrize("function", VAE_FUNCTIONS)
def test_vae_losses_refuse_data_that_fit_refuses(function, case):
    make, message = BAD_DATA[case]
    with pytest.raises(ValueError, match=message):
        VAE_FUNCTIONS[function](_vae(), make(torch.rand(8, 1, 8, 8)))


@pytest.mark.parametrize("case", BAD_DATA)
def test_reconstruction_loss_refuses_data_that_fit_refuses(case):
    make, message = BAD_DATA[case]
    with pytest.raises(ValueError, match=message):
        reconstruction_loss(Autoencoder(64, (16,), 3), make(torch.rand(8, 64)))


def test_gaussian_decoder_takes_any_finite_values_but_not_nan():
    model = VAE(64, hidden=(16,), latent_dim=3, likelihood="gaussian")
    assert torch.isfinite(elbo(model, torch.randn(8, 64) * 3)).all()
    with pytest.raises(ValueError, match="NaN or infinite"):
        elbo(model, BAD_DATA["nan"][0](torch.randn(8, 64)))


def test_log_likelihood_refuses_mismatched_shapes_instead_of_reshaping():
    model = VAE(5, hidden=(4,), latent_dim=2)
    decoded = torch.zeros(64, 5)
    x = torch.rand(64, 5)
    torch.testing.assert_close(log_likelihood(model, decoded, x), log_likelihood(model, decoded, x.reshape(64, 1, 1, 5)))
    for wrong in (x.T.contiguous(), x[:10], torch.rand(64, 6)):   # (5, 64) has 320 values too: no silent reshape
        with pytest.raises(ValueError, match=r"shape|expects"):
            log_likelihood(model, decoded, wrong)
    with pytest.raises(ValueError, match=r"decoded must be .*\(B, in_dim\)"):
        log_likelihood(model, decoded[0], x[:1])


@pytest.mark.parametrize("call, name", [
    (lambda m, x: iwae_log_likelihood(m, x, k=10, batch_size=-1), "batch_size"),
    (lambda m, x: iwae_log_likelihood(m, x, k=10, batch_size=0), "batch_size"),
    (lambda m, x: iwae_log_likelihood(m, x, k=-3), "k"),
    (lambda m, x: iwae_log_likelihood(m, x, k=2.5), "k"),
    (lambda m, x: elbo(m, x, samples=0), "samples"),
    (lambda m, x: elbo_terms(m, x, samples=-1), "samples"),
    (lambda m, x: elbo(m, x, beta=-1.0), "beta"),
    (lambda m, x: elbo(m, x, beta=float("nan")), "beta"),
    (lambda m, x: active_units(m, x, batch_size=0), "batch_size"),
    (lambda m, x: active_units(m, x, threshold=-0.1), "threshold"),
])
def test_non_positive_counts_and_bad_beta_are_refused(call, name):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        call(_vae(), torch.rand(8, 64))


@pytest.mark.parametrize("function", ["elbo", "elbo_terms", "iwae_log_likelihood", "active_units"])
def test_vae_only_functions_refuse_an_autoencoder(function):
    with pytest.raises(TypeError, match="needs a VAE.*Autoencoder"):
        VAE_FUNCTIONS[function](Autoencoder(64, (16,), 3), torch.rand(8, 64))


def test_reconstruction_loss_refuses_a_vae():
    with pytest.raises(TypeError, match="autoencoder's loss.*elbo"):
        reconstruction_loss(_vae(), torch.rand(8, 64))


@pytest.mark.parametrize("x, error, message", [
    (torch.zeros(0, 64), ValueError, "empty batch"),
    ((torch.rand(8, 64) * 255).to(torch.uint8), TypeError, "float images.*uint8"),
    (torch.rand(8, 63), ValueError, "64"),
])
@pytest.mark.parametrize("function", ["elbo", "iwae_log_likelihood"])
def test_losses_name_the_expected_input(function, x, error, message):
    with pytest.raises(error, match=message):
        VAE_FUNCTIONS[function](_vae(), x)


# ------------------------------------------------------------------ denoising: a clean target


def test_reconstruction_loss_with_a_target_is_the_likelihood_of_the_target():
    model = Autoencoder(6, hidden=(5,), latent_dim=2)
    noisy, clean = torch.rand(7, 6), torch.bernoulli(torch.full((7, 6), 0.4))
    expected = -torch.distributions.Bernoulli(logits=model(noisy)).log_prob(clean).sum(-1)
    torch.testing.assert_close(reconstruction_loss(model, noisy, target=clean), expected)
    torch.testing.assert_close(reconstruction_loss(model, clean), reconstruction_loss(model, clean, target=clean))


def test_elbo_with_a_target_encodes_the_input_and_scores_the_target():
    model = VAE(6, hidden=(5,), latent_dim=3)
    noisy, clean = torch.rand(7, 6), torch.bernoulli(torch.full((7, 6), 0.4))
    torch.manual_seed(4)
    value = elbo(model, noisy, beta=0.5, target=clean)
    torch.manual_seed(4)
    mu, logvar = model.encode(noisy)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    z = mu + q.scale * torch.randn_like(mu)
    log_px_z = torch.distributions.Bernoulli(logits=model.decode(z)).log_prob(clean).sum(-1)
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(value, log_px_z - 0.5 * kl)


@pytest.mark.parametrize("target, error, message", [
    (torch.rand(6, 6), ValueError, r"target must hold the clean image of each input, shape \(7, 6\)"),
    (torch.rand(7, 6) * 2, ValueError, r"target: a Bernoulli decoder needs pixel values in \[0, 1\]"),
    (torch.full((7, 6), float("nan")), ValueError, "target: the data contain 42 NaN"),
])
def test_a_bad_target_is_named(target, error, message):
    for call in (lambda: elbo(VAE(6, hidden=(5,), latent_dim=3), torch.rand(7, 6), target=target),
                 lambda: reconstruction_loss(Autoencoder(6, (5,), 2), torch.rand(7, 6), target=target)):
        with pytest.raises(error, match=message):
            call()


# ------------------------------------------------------------------ the conditional VAE (Sohn et al., 2015)
from vaelib import CVAE  # noqa: E402


def _cvae_by_hand(model, x, y, eps):
    """The CVAE's networks written out from its weights, and the distributions they define (torch.distributions)."""
    onehot = torch.nn.functional.one_hot(y, model.n_classes).float()
    lin = torch.nn.functional.linear
    h = torch.relu(lin(torch.cat([x, onehot], 1), model.body[0].weight, model.body[0].bias))
    mu = lin(h, model.to_mu.weight, model.to_mu.bias)
    sigma = torch.exp(0.5 * lin(h, model.to_logvar.weight, model.to_logvar.bias))
    z = mu + sigma * eps
    d1, d2 = model.decoder[0], model.decoder[2]
    logits = lin(torch.relu(lin(torch.cat([z, onehot], 1), d1.weight, d1.bias)), d2.weight, d2.bias)
    q = torch.distributions.Normal(mu, sigma)
    return z, q, torch.distributions.Bernoulli(logits=logits)


def test_cvae_elbo_matches_an_independent_computation():
    torch.manual_seed(0)
    model = CVAE(6, 3, hidden=(5,), latent_dim=2)
    x, y = torch.bernoulli(torch.full((8, 6), 0.4)), torch.tensor([0, 1, 2, 0, 1, 2, 2, 1])
    torch.manual_seed(7)
    value = elbo(model, x, y=y, beta=0.5)
    torch.manual_seed(7)
    eps = torch.randn(8, 2)
    _, q, p_x = _cvae_by_hand(model, x, y, eps)
    prior = torch.distributions.Normal(0.0, 1.0)
    expected = p_x.log_prob(x).sum(-1) - 0.5 * torch.distributions.kl_divergence(q, prior).sum(-1)
    torch.testing.assert_close(value, expected)
    torch.manual_seed(7)
    torch.testing.assert_close(elbo(model, x, y=torch.nn.functional.one_hot(y, 3).float(), beta=0.5), expected)


def test_cvae_iwae_with_one_sample_matches_an_independent_computation():
    torch.manual_seed(0)
    model = CVAE(6, 3, hidden=(5,), latent_dim=2)
    x, y = torch.bernoulli(torch.full((8, 6), 0.4)), torch.tensor([0, 1, 2, 0, 1, 2, 2, 1])
    prior = torch.distributions.Normal(0.0, 1.0)
    for k in (1, 3):                              # all k samples of every example in one chunk
        torch.manual_seed(9)
        value = iwae_log_likelihood(model, x, k=k, y=y)
        torch.manual_seed(9)
        log_w = []
        for eps in torch.randn(k, 8, 2):
            z, q, p_x = _cvae_by_hand(model, x, y, eps)
            log_w.append(p_x.log_prob(x).sum(-1) + prior.log_prob(z).sum(-1) - q.log_prob(z).sum(-1))
        expected = torch.logsumexp(torch.stack(log_w), 0) - math.log(k)
        torch.testing.assert_close(value, expected)
    # One example per chunk (batch_size = k): each chunk uses its own example's label.
    torch.manual_seed(2)
    chunked = iwae_log_likelihood(model, x, k=12, y=y, batch_size=12)
    torch.manual_seed(2)
    one_by_one = torch.cat([iwae_log_likelihood(model, x[i:i + 1], k=12, y=y[i:i + 1]) for i in range(8)])
    torch.testing.assert_close(chunked, one_by_one)


def test_cvae_active_units_use_the_labels():
    torch.manual_seed(0)
    model = CVAE(6, 3, hidden=(5,), latent_dim=2)
    x, y = torch.rand(50, 6), torch.randint(0, 3, (50,))
    count, activity = active_units(model, x, y=y, batch_size=7)
    torch.testing.assert_close(activity, model.encode(x, y)[0].var(0, unbiased=False))


@pytest.mark.parametrize("function", [elbo, elbo_terms, iwae_log_likelihood, active_units])
def test_labels_are_required_by_a_cvae_and_refused_by_a_vae(function):
    cvae, vae = CVAE(6, 3, hidden=(5,), latent_dim=2), VAE(6, hidden=(5,), latent_dim=2)
    x = torch.rand(4, 6)
    name = function.__name__
    with pytest.raises(ValueError, match=f"{name}: CVAE is conditional: it needs the labels y"):
        function(cvae, x)
    with pytest.raises(ValueError, match=rf"{name}: CVAE: class labels must lie in \[0, 3\)"):
        function(cvae, x, y=torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"one per example \(B = 4\)"):
        function(cvae, x, y=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=f"{name}: a VAE is not conditional and takes no labels y"):
        function(vae, x, y=torch.tensor([0, 1, 2, 0]))
