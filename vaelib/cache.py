"""The model cache: ``cached_fit`` trains a model once and reuses it, keyed by everything that decides the result.

Chapters share trained models through it (chapter 7 reuses chapter 5's VAE). Entries are checkpoints
(:mod:`vaelib.checkpoint`) in ``$VAELIB_CACHE`` (default ``~/.cache/vaelib/models``), readable by other users as the
umask allows. The cache never costs a training: an entry that cannot be used (a folder, unreadable, corrupt, another
key's) is reported in one line and the model is trained again; a folder that cannot be written is reported in one
line and the trained model's history returned all the same.
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
from .checkpoint import CheckpointError, _apply, _plain, _read_checkpoint, _version, save_checkpoint, unwrap


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


def _labels_fingerprint(data) -> dict | None:
    """The fingerprint of the labels of an (images, labels) pair; None for anything else (which ``fit`` refuses for a
    conditional model, before training)."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[1], (torch.Tensor, np.ndarray)):
        return fingerprint(data[1])
    return None


def cache_key(model, train, *, epochs, test=None, batch_size=128, lr=1e-3, seed=0, beta=1.0, binarize=None,
              kl_warmup=0, free_bits=0.0, corrupt=None) -> tuple[str, dict]:
    """The model cache key: sha256 of the model's class and config, the data, the fit arguments, vaelib's version and
    the trainer's (:data:`vaelib.train.TRAINER_VERSION`, so that models trained by an older trainer are not reused).

    The model's initial weights and the device are not part of it. Options left at their defaults (``kl_warmup``,
    ``free_bits``, ``corrupt``)
    are not in the key, so the entries stored before those options existed stay valid.
    Returns ``(hex digest, the keyed spec)``.
    """
    model = unwrap(model)
    options = {"epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr), "seed": int(seed),
               "beta": float(beta), "binarize": binarize if binarize is not None else getattr(train, "binarize", None)}
    if kl_warmup:
        options["kl_warmup"] = float(kl_warmup)
    if free_bits:
        options["free_bits"] = float(free_bits)
    if corrupt is not None:
        options["corrupt"] = corruption_config(corrupt)
    spec = {
        "class_name": type(model).__name__,
        "config": _plain(model.config),
        "train": fingerprint(train),
        "test": fingerprint(test),
        "fit": options,
        "vaelib_version": _version(),
        "trainer_version": _train.TRAINER_VERSION,
    }
    if getattr(model, "conditional", False):  # a CVAE learns from the labels too
        spec["train_labels"], spec["test_labels"] = _labels_fingerprint(train), _labels_fingerprint(test)
    blob = json.dumps(spec, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest(), spec


def corruption_config(corrupt) -> dict:
    """The stable description of a denoising corruption, for the cache key: its ``config``, a dict of plain values
    (what ``vaelib.data.gaussian_noise`` and ``masking_noise`` carry). Anything else (a lambda, a function) cannot be
    told apart from another with the same name, so it is refused (ValueError)."""
    config = getattr(corrupt, "config", None)
    try:
        ok = isinstance(config, dict) and json.loads(json.dumps(config, sort_keys=True)) == config
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"cached_fit keys the model cache by everything that decides the result, and "
                         f"corrupt={corrupt!r} has no stable description: use vaelib.data.gaussian_noise(sigma) or "
                         f"vaelib.data.masking_noise(p), or give your function a `config` attribute, a dict of plain "
                         f"values (numbers, strings) that identifies it; or train it with vaelib.fit")
    return config


def cached_fit(model, train, *, epochs: int, test=None, batch_size: int = 128, lr: float = 1e-3, device=None,
               seed: int = 0, beta: float = 1.0, kl_warmup: float = 0, free_bits: float = 0.0, corrupt=None,
               binarize: str | None = None, cache_dir=None, verbose: bool = True) -> History:
    """``fit``, through the model cache: reuse a model trained earlier with the same key, else train and store it.

    The key (see :func:`cache_key`) covers the model's class and config, the training (and test) data, the fit
    arguments and vaelib's version; a ``corrupt`` function must carry a ``config`` (see :func:`corruption_config`).
    On a hit the stored weights are loaded into ``model`` in place and the stored
    history is returned; no training happens. An entry that cannot be used (corrupt, unreadable, a folder, stored
    under another key) is reported in one line and retrained (and overwritten, where it can be); a cache folder
    that cannot be created or written is reported in one line, and the history of the training returned. Ctrl-C
    propagates (see :func:`vaelib.fit`) and nothing half-trained is stored. The cache folder is ``cache_dir``,
    else ``$VAELIB_CACHE``, else ``~/.cache/vaelib/models``.
    """
    key, spec = cache_key(model, train, epochs=epochs, test=test, batch_size=batch_size, lr=lr, seed=seed,
                          beta=beta, binarize=binarize, kl_warmup=kl_warmup, free_bits=free_bits, corrupt=corrupt)
    name = type(unwrap(model)).__name__
    path = cache_root(cache_dir) / f"{name}-{key[:24]}.pt"
    store = True
    if path.is_dir():
        store = False
        print(f"vaelib: model cache entry {path} is a folder, not a file: training again, without storing the "
              f"result", file=sys.stderr)
    elif path.exists():
        before = {k: v.detach().clone() for k, v in model.state_dict().items()}
        try:
            payload = _read_checkpoint(path)
            extra = payload.get("extra") or {}
            if not isinstance(extra, dict) or extra.get("cache_key") != key:
                raise CheckpointError(f"{path} was stored under another key (stale or foreign entry)")
            _, _, history = _apply(payload, path, model)
            if history is None or len(history.train_loss) != epochs:
                raise CheckpointError(f"{path} has no complete training history")
            if history.train_kl and not history.beta and not kl_warmup:
                # Stored before History recorded the KL weight; the key says it was beta throughout.
                history.beta = [float(beta)] * epochs
            if device is not None:
                model.to(device)
            if verbose:
                print(f"vaelib: loaded the trained {name} from the model cache ({path})")
            return history
        except (CheckpointError, OSError) as err:  # OSError: unreadable (another user's file, a dead disk, ...)
            model.load_state_dict(before)
            reason = str(err) if isinstance(err, CheckpointError) else f"{path} cannot be read: {_reason(err)}"
            print(f"vaelib: model cache entry unusable, training again: {reason}", file=sys.stderr)
    # Ctrl-C propagates from fit: nothing half-trained is stored.
    history = _train.fit(model, train, epochs=epochs, test=test, batch_size=batch_size, lr=lr, device=device,
                         seed=seed, beta=beta, kl_warmup=kl_warmup, free_bits=free_bits, corrupt=corrupt,
                         verbose=verbose, binarize=binarize)
    if store:
        try:
            save_checkpoint(path, model, None, history, extra={"cache_key": key, "cache_spec": spec})
        except OSError as err:  # a read-only or full disk, another user's folder: the training is not lost
            print(f"vaelib: could not store the trained {name} in the model cache ({path}: {_reason(err)}); "
                  f"the model is trained, but will be trained again next time", file=sys.stderr)
    return history


def _reason(err: OSError) -> str:
    """The OS's words for an error, without the path (which the messages name themselves)."""
    return err.strerror or str(err) or type(err).__name__
