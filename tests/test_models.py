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


# ------------------------------------------------------------------ the conditional VAE
from vaelib import CVAE  # noqa: E402


def test_cvae_shapes_and_label_forms():
    torch.manual_seed(0)
    model = CVAE(64, 3, hidden=(16,), latent_dim=2)
    assert model.conditional and not VAE(64).conditional
    assert model.config == dict(in_dim=64, n_classes=3, hidden=[16], latent_dim=2, likelihood="bernoulli",
                                image_shape=[1, 8, 8])
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 2, 1, 2])
    mu, logvar = model.encode(x, y)
    assert mu.shape == logvar.shape == (4, 2)
    decoded, mu2, _ = model(x, y)
    assert decoded.shape == (4, 64) and torch.equal(mu, mu2)
    assert model.reconstruct(x, y).shape == (4, 1, 8, 8)
    # One-hot rows are the same labels; numpy indices too.
    onehot = torch.nn.functional.one_hot(y, 3).float()
    torch.testing.assert_close(model.encode(x, onehot), (mu, logvar))
    torch.testing.assert_close(model.encode(x, y.numpy()), (mu, logvar))
    torch.testing.assert_close(model.decode(mu, onehot), model.decode(mu, y))
    # The label matters: the same z decodes differently for different classes.
    z = torch.zeros(3, 2)
    decoded = model.decode(z, torch.arange(3))
    assert not torch.allclose(decoded[0], decoded[1]) and not torch.allclose(decoded[1], decoded[2])
    samples = model.sample(5, 1)
    assert samples.shape == (5, 1, 8, 8) and 0 <= samples.min() and samples.max() <= 1
    assert model.sample(3, torch.tensor([0, 1, 2])).shape == (3, 1, 8, 8)


@pytest.mark.parametrize("y, message", [
    (None, r"CVAE is conditional: it needs the labels y, class indices \(B,\) in \[0, 3\)"),
    (torch.tensor([0, 1, 3, 0]), r"class labels must lie in \[0, 3\); got labels in \[0, 3\]"),
    (torch.tensor([0, -1, 2, 0]), r"class labels must lie in \[0, 3\); got labels in \[-1, 2\]"),
    (torch.tensor([0, 1, 2]), r"one per example \(B = 4\); got torch.int64 of shape \(3,\)"),
    (torch.zeros(4, 1, dtype=torch.long), r"got torch.int64 of shape \(4, 1\)"),
    (torch.zeros(4, dtype=torch.bool), "torch.bool"),
    (torch.zeros(4, 2), r"float labels must be rows of shape \(4, 3\), one per example; got shape \(4, 2\)"),
    ([0, 1, 2, 0], "must be a tensor"),
])
def test_cvae_refuses_bad_labels(y, message):
    model = CVAE(64, 3, hidden=(16,), latent_dim=2)
    with pytest.raises(ValueError, match=message):
        model.encode(torch.rand(4, 64), y)
    with pytest.raises(ValueError, match=message):
        model.decode(torch.zeros(4, 2), y)


def test_cvae_checks_its_arguments_and_rebuilds_from_config():
    with pytest.raises(ValueError, match="n_classes must be a positive integer"):
        CVAE(64, 0)
    model = CVAE(64, 4, hidden=(16, 8), latent_dim=3, likelihood="gaussian")
    twin = build_model("CVAE", model.config)
    twin.load_state_dict(model.state_dict())
    x, y = torch.rand(2, 64), torch.tensor([3, 0])
    torch.testing.assert_close(model.encode(x, y), twin.encode(x, y))
    # The encoder reads [x, onehot(y)] and the decoder [z, onehot(y)]: n_classes more inputs than a VAE's.
    vae = VAE(64, hidden=(16, 8), latent_dim=3)
    assert model.body[0].in_features == vae.body[0].in_features + 4
    assert model.decoder[0].in_features == vae.decoder[0].in_features + 4
