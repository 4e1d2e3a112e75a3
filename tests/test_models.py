"""Shapes, input checks and rebuilding of the models."""
import pytest
import torch

from vaelib import VAE, Autoencoder, ConvVAE, build_model


@pytest.mark.parametrize("model", [VAE(784, latent_dim=3), ConvVAE(latent_dim=3),
                                   VAE(784, hidden=(64, 32), latent_dim=3, likelihood="gaussian")])
def test_vae_shapes_for_flat_and_image_input(model):
    for x in (torch.rand(5, 784), torch.rand(5, 1, 28, 28)):
        mu, logvar = model.encode(x)
        assert mu.shape == logvar.shape == (5, 3)
        assert model.decode(mu).shape == (5, 784)
        decoded, mu2, _ = model(x)
        assert decoded.shape == (5, 784) and mu2.shape == (5, 3)
    samples = model.sample(4)
    assert samples.shape == (4, 1, 28, 28)
    if model.likelihood == "bernoulli":
        assert 0 <= samples.min() and samples.max() <= 1


def test_autoencoder_shapes():
    ae = Autoencoder(64, hidden=(32,), latent_dim=2)
    x = torch.rand(3, 1, 8, 8)
    assert ae.encode(x).shape == (3, 2)
    assert ae.decode(torch.zeros(3, 2)).shape == (3, 64)
    assert ae.reconstruct(x).shape == (3, 1, 8, 8)


@pytest.mark.parametrize("model", [VAE(784), Autoencoder(784, (32,), 2), ConvVAE()])
@pytest.mark.parametrize("shape", [(5, 100), (5, 1, 27, 28), (784,), (2, 3, 784)])
def test_wrong_input_shape_names_the_expected_size(model, shape):
    with pytest.raises(ValueError, match="784"):
        model.encode(torch.rand(*shape))


def test_wrong_latent_shape_and_likelihood_are_refused():
    with pytest.raises(ValueError, match=r"\(B, 20\)"):
        VAE(784).decode(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="bernoulli"):
        VAE(784, likelihood="poisson")
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvVAE(image_shape=(1, 30, 30))


@pytest.mark.parametrize("model", [VAE(64, hidden=(16,), latent_dim=2), Autoencoder(64, (16,), 2),
                                   ConvVAE(image_shape=(1, 8, 8), latent_dim=2, channels=(4, 8), hidden=16)])
def test_build_model_rebuilds_from_config(model):
    twin = build_model(type(model).__name__, model.config)
    twin.load_state_dict(model.state_dict())
    x = torch.rand(2, 64)
    out, twin_out = (m.encode(x) for m in (model, twin))
    torch.testing.assert_close(out, twin_out)
    with pytest.raises(ValueError, match="unknown model class"):
        build_model("GAN", {})


def test_reparameterize_has_the_right_moments():
    torch.manual_seed(0)
    mu, logvar = torch.full((200000, 1), 1.5), torch.full((200000, 1), -1.0)
    z = VAE.reparameterize(mu, logvar)
    assert abs(z.mean() - 1.5) < 0.01 and abs(z.var() - torch.exp(torch.tensor(-1.0))) < 0.01


@pytest.mark.parametrize("model", [VAE(64, hidden=(16,), latent_dim=2), Autoencoder(64, (16,), 2),
                                   ConvVAE(image_shape=(1, 8, 8), latent_dim=2, channels=(4, 8), hidden=16)])
def test_empty_batch_and_integer_pixels_are_named(model):
    name = type(model).__name__
    with pytest.raises(ValueError, match=f"{name} got an empty batch"):
        model.encode(torch.zeros(0, 64))
    with pytest.raises(TypeError, match=f"{name} expects float images.*torch.uint8.*divide by 255"):
        model.encode(torch.zeros(3, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model.encode([[0.0] * 64])


@pytest.mark.parametrize("shape", [(1, 28), (28, 28), (1, 28, 28, 1), (1, -4, 8), (1, 2.5, 8), 28, "1x28x28"])
def test_convvae_checks_its_image_shape(shape):
    with pytest.raises(ValueError, match=r"image_shape must be three positive integers \(C, H, W\)"):
        ConvVAE(image_shape=shape)
