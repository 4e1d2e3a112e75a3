"""The model cache: ``cached_fit`` trains a model once and reuses it, keyed by everything that decides the result.

Chapters share trained models through it (chapter 7 reuses chapter 5's VAE). Entries are checkpoints
(:mod:`vaelib.checkpoint`) in ``$VAELIB_CACHE`` (default ``~/.cache/vaelib/models``).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from . import train as _train
from .train import History
from .checkpoint import CheckpointError, _apply, _plain, _read_checkpoint, _version, save_checkpoint


def cache_root(cache_dir=None) -> Path:
    """The model cache folder: ``cache_dir``, else ``$VAELIB_CACHE``, else ``~/.cache/vaelib/models``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("VAELIB_CACHE"):
        return Path(os.environ["VAELIB_CACHE"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "vaelib" / "models"


def fingerprint(data) -> dict | None:
    """Shape, dtype and sha256 of the images' bytes (about 0.3 s for all of MNIST); None for None."""
    if data is None:
        return None
    images = data[0] if isinstance(data, (tuple, list)) else data
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"expected an image tensor or an (images, labels) pair; got {type(images).__name__}")
    arr = images.detach().cpu().contiguous().numpy()
    return {"shape": list(arr.shape), "dtype": str(arr.dtype), "sha256": hashlib.sha256(arr.data).hexdigest()}


def cache_key(model, train, *, epochs, test=None, batch_size=128, lr=1e-3, seed=0, beta=1.0, binarize=None) -> tuple[str, dict]:
    """The model cache key: sha256 of the model's class and config, the data, the fit arguments and vaelib's version.

    The model's initial weights and the device are not part of it. Returns ``(hex digest, the keyed spec)``.
    """
    spec = {
        "class_name": type(model).__name__,
        "config": _plain(model.config),
        "train": fingerprint(train),
        "test": fingerprint(test),
        "fit": {"epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr), "seed": int(seed),
                "beta": float(beta), "binarize": binarize if binarize is not None else getattr(train, "binarize", None)},
        "vaelib_version": _version(),
    }
    blob = json.dumps(spec, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest(), spec


def cached_fit(model, train, *, epochs: int, test=None, batch_size: int = 128, lr: float = 1e-3, device=None,
               seed: int = 0, beta: float = 1.0, binarize: str | None = None, cache_dir=None,
               verbose: bool = True) -> History:
    """``fit``, through the model cache: reuse a model trained earlier with the same key, else train and store it.

    The key (see :func:`cache_key`) covers the model's class and config, the training (and test) data, the fit
    arguments and vaelib's version. On a hit the stored weights are loaded into ``model`` in place and the stored
    history is returned; no training happens. A corrupt or mismatched entry is reported in one line, retrained
    and overwritten. An interrupted training is not stored. The cache folder is ``cache_dir``, else
    ``$VAELIB_CACHE``, else ``~/.cache/vaelib/models``.
    """
    key, spec = cache_key(model, train, epochs=epochs, test=test, batch_size=batch_size, lr=lr, seed=seed,
                          beta=beta, binarize=binarize)
    path = cache_root(cache_dir) / f"{type(model).__name__}-{key[:24]}.pt"
    if path.exists():
        before = {k: v.detach().clone() for k, v in model.state_dict().items()}
        try:
            payload = _read_checkpoint(path)
            extra = payload.get("extra") or {}
            if extra.get("cache_key") != key:
                raise CheckpointError(f"{path} was stored under another key (stale entry)")
            _, _, history = _apply(payload, path, model)
            if history is None or len(history.train_loss) != epochs:
                raise CheckpointError(f"{path} has no complete training history")
            if device is not None:
                model.to(device)
            if verbose:
                print(f"vaelib: loaded the trained {type(model).__name__} from the model cache ({path})")
            return history
        except CheckpointError as err:
            model.load_state_dict(before)
            print(f"vaelib: model cache entry unusable, training again: {err}", file=sys.stderr)
    history = _train.fit(model, train, epochs=epochs, test=test, batch_size=batch_size, lr=lr, device=device, seed=seed,
                  beta=beta, verbose=verbose, binarize=binarize)
    if len(history.train_loss) == epochs:  # not after an interruption
        save_checkpoint(path, model, None, history, extra={"cache_key": key, "cache_spec": spec})
    return history
