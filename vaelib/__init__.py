"""vaelib: autoencoders and variational autoencoders for the book "Generative models: autoencoders and VAEs".

One module per concern: ``models``, ``losses``, ``train``, ``checkpoint``, ``cache``, ``data``, ``plot``, ``widgets``,
``notebook`` (helpers for the chapters as notebooks), ``checks`` (the input checks they share).
Every loss and likelihood is per example and in nats.
"""
__version__ = "0.1.0"

from .models import CVAE, VAE, Autoencoder, ConvVAE, build_model
from .losses import (
    active_units,
    elbo,
    elbo_terms,
    free_bits_kl,
    gaussian_kl,
    iwae_log_likelihood,
    log_likelihood,
    reconstruction_loss,
    reparameterized_gradient,
    score_function_gradient,
)
from .data import ImageData, gaussian_noise, load_dataset, masking_noise
from .train import History, Trainer, TrainingDiverged, fit, pick_device
from .checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from .cache import cached_fit
