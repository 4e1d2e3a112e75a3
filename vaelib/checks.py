"""Input checks shared by the models, the losses and the trainer: each refuses bad input with an error that names
what was expected, before any computation (instead of a deep traceback from torch, or finite garbage).

The data check (:func:`values`) makes one pass over the data; the trainer runs it once per dataset, the public
losses once per call, and nothing runs it per training batch.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def positive(name: str, value, integer: bool = False) -> None:
    """Refuse anything but a positive finite number (a positive integer with ``integer=True``): ValueError."""
    ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
    if isinstance(value, bool) or not ok or not value > 0 or not math.isfinite(value):
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {kind}; got {value!r}")


def nonnegative(name: str, value) -> None:
    """Refuse anything but a finite number >= 0 (NaN, inf, negative numbers, bools, strings): ValueError."""
    if not isinstance(value, (int, float, np.number)) or isinstance(value, bool) or not (
            value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")


def batch(x, who: str) -> None:
    """A model's input: a float tensor with at least one example. ``who`` names the model in the message."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who} expects a torch.Tensor of images; got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{who} expects float images in [0, 1]; got dtype {x.dtype} (for uint8 pixels divide by 255)")
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"{who} got an empty batch (shape {tuple(x.shape)}); it needs at least one example")


def image_shape(shape, in_dim: int | None = None, divisible_by: int | None = None) -> tuple[int, int, int]:
    """``(C, H, W)`` as three positive integers; with ``in_dim``, C*H*W must equal it; with ``divisible_by``, H and W
    must be multiples of it. Returns the shape as a tuple of ints."""
    try:
        dims = tuple(shape)
    except TypeError:
        dims = None
    if dims is None or len(dims) != 3 or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                                                  and d > 0 for d in dims):
        raise ValueError(f"image_shape must be three positive integers (C, H, W), e.g. (1, 28, 28); got {shape!r}")
    c, h, w = (int(d) for d in dims)
    if in_dim is not None and c * h * w != in_dim:
        raise ValueError(f"image_shape {dims} holds {c * h * w} pixels, but in_dim is {in_dim}")
    if divisible_by is not None and (h % divisible_by or w % divisible_by):
        raise ValueError(f"image height and width must be divisible by {divisible_by}; got image_shape {dims}")
    return c, h, w


def values(x: torch.Tensor, likelihood: str | None, name: str = "x") -> None:
    """Refuse NaN or infinite values, and, under a Bernoulli decoder, values outside [0, 1]: ValueError."""
    if x.numel() == 0:
        return
    with torch.no_grad():
        lo, hi = (v.item() for v in torch.aminmax(x.detach()))  # one pass: NaN propagates, inf shows as an extreme
        if not (math.isfinite(lo) and math.isfinite(hi)):
            bad = (~torch.isfinite(x.detach())).sum().item()
            raise ValueError(f"{name}: the data contain {bad} NaN or infinite values")
    if likelihood == "bernoulli" and (lo < 0 or hi > 1):
        raise ValueError(f"{name}: a Bernoulli decoder needs pixel values in [0, 1]; got values in [{lo:.4g}, {hi:.4g}]"
                         f"{' (for 0-255 pixels divide by 255)' if hi > 1 and hi <= 255 else ''}")


def labels(y, n_classes: int, batch: int, who: str) -> torch.Tensor:
    """A conditional model's labels as float rows (batch, n_classes): class indices (batch,) of an integer dtype in
    [0, n_classes) become one-hot rows; float rows (batch, n_classes) (one-hot, or class probabilities) pass as they
    are. Anything else raises ValueError naming ``who``. Checking the range of indices reads them on the host."""
    expected = f"class indices (B,) in [0, {n_classes}) or float rows (B, {n_classes})"
    if y is None:
        raise ValueError(f"{who} is conditional: it needs the labels y, {expected}; got none")
    if isinstance(y, np.ndarray):
        y = torch.from_numpy(y)
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"{who}: the labels y must be a tensor, {expected}; got {type(y).__name__}")
    if y.is_floating_point():
        if tuple(y.shape) != (batch, n_classes):
            raise ValueError(f"{who}: float labels must be rows of shape ({batch}, {n_classes}), one per example; "
                             f"got shape {tuple(y.shape)}")
        return y
    if y.dtype == torch.bool or y.is_complex() or tuple(y.shape) != (batch,):
        raise ValueError(f"{who}: the labels y must be {expected}, one per example (B = {batch}); got "
                         f"{y.dtype} of shape {tuple(y.shape)}")
    if batch:
        lo, hi = (v.item() for v in torch.aminmax(y))
        if lo < 0 or hi >= n_classes:
            raise ValueError(f"{who}: class labels must lie in [0, {n_classes}); got labels in [{lo}, {hi}]")
    return torch.nn.functional.one_hot(y.long(), n_classes).float()
