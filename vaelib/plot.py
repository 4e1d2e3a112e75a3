"""Plotting helpers for the book: image grids, learning curves, latent scatters and the decoded manifold.

Every helper draws on a matplotlib ``Axes`` (a new one when ``ax`` is None), labels what it draws and returns the axes.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


def _as_numpy_images(images) -> np.ndarray:
    """(N, C, H, W) or (N, H, W) tensor/array in [0, 1] -> (N, H, W) or (N, H, W, 3) numpy array."""
    a = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if a.ndim == 4 and a.shape[1] in (1, 3):
        a = a[:, 0] if a.shape[1] == 1 else a.transpose(0, 2, 3, 1)
    if a.ndim not in (3, 4):
        raise ValueError(f"expected images of shape (N, C, H, W) or (N, H, W); got {a.shape}")
    return a


def image_grid(images, nrow: int = 8, pad: int = 1) -> np.ndarray:
    """Tile N images into one array of ``ceil(N / nrow)`` rows and ``nrow`` columns, with ``pad`` pixels of gap."""
    a = _as_numpy_images(images)
    n, h, w = a.shape[:3]
    ncol = min(nrow, n)
    rows = -(-n // ncol)
    grid = np.ones((rows * (h + pad) - pad, ncol * (w + pad) - pad, *a.shape[3:]), dtype=a.dtype)
    for i in range(n):
        r, c = divmod(i, ncol)
        grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = a[i]
    return grid


def show_images(images, nrow: int = 8, ax=None, title: str | None = None):
    """Show images (N, C, H, W) in [0, 1] as a grey grid (0 is black), ``nrow`` per row."""
    ax = ax or plt.figure(figsize=(min(nrow, len(images)) * 0.8, -(-len(images) // nrow) * 0.8 + 0.4)).gca()
    ax.imshow(image_grid(images, nrow), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def plot_history(history, ax=None, title: str | None = None):
    """Per-epoch training (and test, if recorded) loss in nats per example."""
    ax = ax or plt.figure(figsize=(5, 3.5)).gca()
    epochs = np.arange(1, len(history.train_loss) + 1)
    ax.plot(epochs, history.train_loss, marker="o", label="train")
    if history.test_loss:
        ax.plot(epochs, history.test_loss, marker="s", label="test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (nats per example)")
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_latent(codes, labels, ax=None, title: str | None = None, s: float = 2.0):
    """Scatter 2-D codes (N, 2) coloured by integer label, with a colour bar naming the labels."""
    codes = codes.detach().cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
    labels = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if codes.ndim != 2 or codes.shape[1] != 2:
        raise ValueError(f"plot_latent needs 2-D codes of shape (N, 2); got {codes.shape}")
    ax = ax or plt.figure(figsize=(5.5, 4.5)).gca()
    classes = np.unique(labels)
    pts = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=s,
                     vmin=classes.min() - 0.5, vmax=classes.max() + 0.5)
    cbar = ax.figure.colorbar(pts, ax=ax, ticks=classes)
    cbar.set_label("label")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return ax


@torch.no_grad()
def manifold_grid(model, n: int = 15, ax=None, title: str | None = None):
    """Decode an n x n grid of 2-D latent points placed at the N(0, 1) quantiles of evenly spaced probabilities.

    Equal steps in probability put more grid points where the prior has more mass. Returns the axes; the tick labels
    are the z values.
    """
    if model.latent_dim != 2:
        raise ValueError(f"manifold_grid needs a model with latent_dim=2; got {model.latent_dim}")
    probs = torch.linspace(0.5 / n, 1 - 0.5 / n, n)
    zs = torch.distributions.Normal(0.0, 1.0).icdf(probs)
    z1, z2 = torch.meshgrid(zs, zs.flip(0), indexing="xy")    # z2 grows upward in the picture
    z = torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1)
    device = next(model.parameters()).device
    images = model.mean_image(model.decode(z.to(device))).cpu()
    ax = ax or plt.figure(figsize=(6, 6)).gca()
    grid = image_grid(images, nrow=n, pad=0)
    h = grid.shape[0] // n
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    ticks = np.arange(n) * h + h / 2
    step = max(1, n // 5)
    ax.set_xticks(ticks[::step], [f"{v:.2f}" for v in zs[::step].tolist()])
    ax.set_yticks(ticks[::step], [f"{v:.2f}" for v in zs.flip(0)[::step].tolist()])
    ax.set_xlabel("$z_1$ (N(0,1) quantiles)")
    ax.set_ylabel("$z_2$ (N(0,1) quantiles)")
    if title:
        ax.set_title(title)
    return ax


def plot_activity(activities, labels, ax=None, threshold: float = 0.01, colors=None, title: str | None = None):
    """Each model's latent units sorted by activity A_j = Var_x(mu_j(x)) (Burda et al., 2015), on a log axis, with
    the threshold between active and inactive units as a dashed line.

    activities: a sequence of 1-D tensors or arrays (latent_dim,), one per model; labels: one string per model (the
    count of active units is appended). Activities below 1e-6 are drawn at 1e-6.
    """
    activities = [a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a) for a in activities]
    if len(activities) != len(labels) or any(a.ndim != 1 or a.size == 0 for a in activities):
        raise ValueError(f"expected one label per model and 1-D activities; got {len(labels)} labels and shapes "
                         f"{[a.shape for a in activities]}")
    ax = ax or plt.figure(figsize=(6, 4.2)).gca()
    colors = colors if colors is not None else [None] * len(activities)
    for a, label, colour in zip(activities, labels, colors):
        ax.semilogy(np.arange(1, a.size + 1), np.sort(a)[::-1].clip(1e-6), "o-", ms=3, color=colour,
                    label=f"{label} ({int((a > threshold).sum())} active)")
    ax.axhline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set_xlabel("latent dimension, sorted by activity")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_ylabel("activity $A_j = \\mathrm{Var}_x(\\mu_j(x))$")
    ax.legend(fontsize=7, ncol=2 if len(activities) > 3 else 1)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return ax
