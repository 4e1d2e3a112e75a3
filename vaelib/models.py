"""Autoencoders and variational autoencoders: an MLP pair and a convolutional VAE.

Shapes: images are ``(B, C, H, W)`` in ``[0, 1]``; every model also accepts them flattened as ``(B, in_dim)``
with ``in_dim = C * H * W``. Latent codes are ``(B, latent_dim)``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import checks

LIKELIHOODS = ("bernoulli", "gaussian")


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _default_image_shape(in_dim: int) -> tuple[int, ...]:
    side = math.isqrt(in_dim)
    return (1, side, side) if side * side == in_dim else (in_dim,)


class _Flatten(nn.Module):
    """Shared input handling: flatten images to (B, in_dim) and refuse any other shape with a clear error."""

    in_dim: int

    def flatten(self, x: torch.Tensor) -> torch.Tensor:
        checks.batch(x, type(self).__name__)  # a float tensor with at least one example
        if x.dim() == 2 and x.shape[1] == self.in_dim:
            return x
        if x.dim() == 4 and x[0].numel() == self.in_dim:
            return x.reshape(x.shape[0], self.in_dim)
        raise ValueError(
            f"{type(self).__name__} expects input of shape (B, {self.in_dim}) or (B, C, H, W) with "
            f"C*H*W = {self.in_dim}; got {tuple(x.shape)}"
        )

    def _check_z(self, z: torch.Tensor) -> None:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected latent codes of shape (B, {self.latent_dim}); got {tuple(z.shape)}")


class Autoencoder(_Flatten):
    """A deterministic autoencoder: encoder ``x -> h`` and decoder ``h -> x_hat``.

    ``decode`` returns Bernoulli logits (B, in_dim); ``reconstruct`` returns images in [0, 1].
    """

    likelihood = "bernoulli"

    def __init__(self, in_dim: int, hidden=(400,), latent_dim: int = 20, image_shape=None):
        super().__init__()
        hidden = list(hidden)
        self.in_dim, self.latent_dim = int(in_dim), int(latent_dim)
        self.image_shape = tuple(image_shape) if image_shape else _default_image_shape(self.in_dim)
        self.config = dict(in_dim=self.in_dim, hidden=hidden, latent_dim=self.latent_dim,
                           image_shape=list(self.image_shape))
        self.encoder = _mlp([self.in_dim, *hidden, self.latent_dim])
        self.decoder = _mlp([self.latent_dim, *hidden[::-1], self.in_dim])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) or (B, C, H, W) -> codes (B, latent_dim)."""
        return self.encoder(self.flatten(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (B, latent_dim) -> Bernoulli logits (B, in_dim)."""
        self._check_z(z)
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions in [0, 1], shape (B, *image_shape)."""
        return torch.sigmoid(self(x)).reshape(-1, *self.image_shape)


class _VAEBase(_Flatten):
    """What every VAE shares: the reparameterisation, sampling and the decoder likelihood's parameters."""

    #: A conditional model's encode, decode and forward take class labels y as well (see :class:`CVAE`).
    conditional = False

    def _init_likelihood(self, likelihood: str) -> None:
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}; got {likelihood!r}")
        self.likelihood = likelihood
        if likelihood == "gaussian":
            # One learned log-variance per pixel, shared by every z: p(x|z) = N(mean(z), diag exp(decoder_logvar)).
            self.decoder_logvar = nn.Parameter(torch.zeros(self.in_dim))

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I): a sample whose gradient flows to mu and logvar."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def forward(self, x: torch.Tensor):
        """Returns (decoded, mu, logvar): the decoder's parameters for one sample z ~ q(z|x), and q's parameters."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar

    def mean_image(self, decoded: torch.Tensor) -> torch.Tensor:
        """The decoder distribution's mean, as images (B, *image_shape) in [0, 1] for Bernoulli."""
        m = torch.sigmoid(decoded) if self.likelihood == "bernoulli" else decoded
        return m.reshape(-1, *self.image_shape)

    @torch.no_grad()
    def sample(self, n: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw z ~ N(0, I) and return the decoder means, shape (n, *image_shape)."""
        device = device if device is not None else next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, device=device, generator=generator)
        return self.mean_image(self.decode(z))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder mean at the posterior mean z = mu(x), shape (B, *image_shape)."""
        mu, _ = self.encode(x)
        return self.mean_image(self.decode(mu))


class VAE(_VAEBase):
    """A variational autoencoder with MLP encoder and decoder (Kingma and Welling, 2014).

    Recognition model q(z|x) = N(mu(x), diag exp(logvar(x))); prior p(z) = N(0, I);
    generative model p(x|z): Bernoulli with logits ``decode(z)``, or Gaussian with mean ``decode(z)``.
    """

    #: Extra inputs of the encoder and of the decoder: 0 here; a CVAE's one-hot label, n_classes wide.
    label_dim = 0

    def __init__(self, in_dim: int, hidden=(400,), latent_dim: int = 20, likelihood: str = "bernoulli",
                 image_shape=None):
        super().__init__()
        hidden = list(hidden)
        self.in_dim, self.latent_dim = int(in_dim), int(latent_dim)
        self.image_shape = tuple(image_shape) if image_shape else _default_image_shape(self.in_dim)
        self.config = dict(in_dim=self.in_dim, hidden=hidden, latent_dim=self.latent_dim,
                           likelihood=likelihood, image_shape=list(self.image_shape))
        self.body = _mlp([self.in_dim + self.label_dim, *hidden])
        last = hidden[-1] if hidden else self.in_dim + self.label_dim
        self.to_mu = nn.Linear(last, self.latent_dim)       # encoder head for the mean
        self.to_logvar = nn.Linear(last, self.latent_dim)   # encoder head for log sigma^2
        self.decoder = _mlp([self.latent_dim + self.label_dim, *hidden[::-1], self.in_dim])
        self._init_likelihood(likelihood)

    def encode(self, x: torch.Tensor):
        """(B, in_dim) or (B, C, H, W) -> (mu, logvar), each (B, latent_dim)."""
        return self._encode_features(self.flatten(x))

    def _encode_features(self, h: torch.Tensor):
        """The encoder on its input features (B, in_dim + label_dim) -> (mu, logvar)."""
        if len(self.body):
            h = torch.relu(self.body(h))
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> the decoder distribution's parameters, (B, in_dim)."""
        self._check_z(z)
        return self.decoder(z)


class CVAE(VAE):
    """A conditional VAE: the MLP VAE given a class label y (Sohn, Lee and Yan, 2015; the generative model of
    Kingma et al., 2014's M2 with y observed).

    Recognition model q(z|x,y) = N(mu(x,y), diag exp(logvar(x,y))), the encoder reading [x, onehot(y)]; prior
    p(z) = N(0, I), the same for every class; generative model p(x|z,y), the decoder reading [z, onehot(y)].
    ELBO(x|y) = E_q[log p(x|z,y)] - KL(q(z|x,y) || p(z)) <= log p(x|y).

    Labels ``y``: class indices (B,) of an integer dtype in [0, n_classes), as ``load_dataset`` returns them, or
    float rows (B, n_classes): one-hot, or class probabilities (e.g. to decode a blend of two classes).
    """

    conditional = True

    def __init__(self, in_dim: int, n_classes: int, hidden=(400,), latent_dim: int = 2,
                 likelihood: str = "bernoulli", image_shape=None):
        checks.positive("n_classes", n_classes, integer=True)
        self.label_dim = int(n_classes)  # read by VAE.__init__: the one-hot label widens both networks' inputs
        super().__init__(in_dim, hidden, latent_dim, likelihood, image_shape)
        self.n_classes = self.label_dim
        self.config = dict(in_dim=self.in_dim, n_classes=self.n_classes, hidden=list(hidden),
                           latent_dim=self.latent_dim, likelihood=likelihood, image_shape=list(self.image_shape))

    def condition(self, y, like: torch.Tensor) -> torch.Tensor:
        """The labels as float rows (B, n_classes), on ``like``'s device and dtype, B being ``like``'s batch size.
        Missing labels, labels of the wrong shape or outside [0, n_classes) raise ValueError."""
        rows = checks.labels(y, self.n_classes, like.shape[0], type(self).__name__)
        return rows.to(like.device, like.dtype)

    def encode(self, x: torch.Tensor, y):
        """q(z|x,y): x (B, in_dim) or (B, C, H, W) and labels y -> (mu, logvar), each (B, latent_dim)."""
        flat = self.flatten(x)
        return self._encode_features(torch.cat([flat, self.condition(y, flat)], dim=1))

    def decode(self, z: torch.Tensor, y) -> torch.Tensor:
        """p(x|z,y): z (B, latent_dim) and labels y -> the decoder distribution's parameters, (B, in_dim)."""
        self._check_z(z)
        return self.decoder(torch.cat([z, self.condition(y, z)], dim=1))

    def forward(self, x: torch.Tensor, y):
        """Returns (decoded, mu, logvar) for one sample z ~ q(z|x,y), as VAE's forward does."""
        mu, logvar = self.encode(x, y)
        return self.decode(self.reparameterize(mu, logvar), y), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, y, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw z ~ N(0, I) and return the decoder means given the labels, shape (n, *image_shape).

        ``y``: one class (an int) for all n samples, or labels for each, (n,) or (n, n_classes)."""
        device = device if device is not None else next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, device=device, generator=generator)
        if isinstance(y, (int, np.integer)) and not isinstance(y, bool):
            y = torch.full((n,), int(y), dtype=torch.long, device=device)
        return self.mean_image(self.decode(z, y))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y) -> torch.Tensor:
        """Decoder mean at the posterior mean z = mu(x, y), shape (B, *image_shape)."""
        mu, _ = self.encode(x, y)
        return self.mean_image(self.decode(mu, y))


class ConvVAE(_VAEBase):
    """A convolutional VAE for small images (side divisible by 4), e.g. (1, 28, 28).

    Encoder: two stride-2 convolutions (32, 64 channels) and a linear layer to (mu, logvar);
    decoder: the mirror image with transposed convolutions.
    """

    def __init__(self, image_shape=(1, 28, 28), latent_dim: int = 16, likelihood: str = "bernoulli",
                 channels=(32, 64), hidden: int = 256):
        super().__init__()
        c, h, w = checks.image_shape(image_shape, divisible_by=4)  # two stride-2 layers halve H and W twice
        c1, c2 = channels
        self.image_shape, self.in_dim, self.latent_dim = (c, h, w), c * h * w, int(latent_dim)
        self.config = dict(image_shape=[c, h, w], latent_dim=self.latent_dim, likelihood=likelihood,
                           channels=list(channels), hidden=hidden)
        self._feat = (c2, h // 4, w // 4)
        flat = c2 * (h // 4) * (w // 4)
        self.encoder = nn.Sequential(
            nn.Conv2d(c, c1, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(),
        )
        self.to_mu = nn.Linear(hidden, self.latent_dim)
        self.to_logvar = nn.Linear(hidden, self.latent_dim)
        self.decoder_fc = nn.Sequential(nn.Linear(self.latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, flat), nn.ReLU())
        self.decoder_conv = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c1, c, 4, stride=2, padding=1),
        )
        self._init_likelihood(likelihood)

    def encode(self, x: torch.Tensor):
        """(B, C, H, W) or (B, in_dim) -> (mu, logvar), each (B, latent_dim)."""
        h = self.encoder(self.flatten(x).reshape(-1, *self.image_shape))
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> the decoder distribution's parameters, flattened to (B, in_dim)."""
        self._check_z(z)
        h = self.decoder_fc(z).reshape(-1, *self._feat)
        return self.decoder_conv(h).reshape(z.shape[0], self.in_dim)


MODEL_CLASSES = {cls.__name__: cls for cls in (Autoencoder, VAE, CVAE, ConvVAE)}


def build_model(class_name: str, config: dict) -> nn.Module:
    """Rebuild a model from its class name and ``config`` (as stored in checkpoints and the model cache)."""
    if class_name not in MODEL_CLASSES:
        raise ValueError(f"unknown model class {class_name!r}; expected one of {sorted(MODEL_CLASSES)}")
    return MODEL_CLASSES[class_name](**config)
