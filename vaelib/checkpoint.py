"""Checkpoints: a model (class name, config, weights), its optimiser state and its training history in one file.

Files hold plain dicts, lists, numbers and tensors only, so they load with ``torch.load(weights_only=True)``: a
checkpoint never runs code when it is read.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

CHECKPOINT_FORMAT = "vaelib-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint (or model-cache entry) is unreadable or does not match the model."""


def _version() -> str:
    from . import __version__

    return __version__


def _plain(obj):
    """Tuples to lists, recursively, so that configs compare equal after a save/load round trip."""
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def save_checkpoint(path, model, optimizer=None, history=None, extra: dict | None = None) -> Path:
    """Write model (class name, config, weights), optimiser state and history to ``path``, atomically.

    The file holds plain dicts, lists, numbers and tensors only, so it loads with ``torch.load(weights_only=True)``.
    It is written to a temporary file in the same folder and then renamed, so a crash never leaves half a file.
    ``optimizer`` may be an optimiser or its ``state_dict()``; ``extra`` is stored as is (plain values only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if optimizer is not None and not isinstance(optimizer, dict):
        optimizer = optimizer.state_dict()
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "vaelib_version": _version(),
        "class_name": type(model).__name__,
        "config": _plain(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer,
        "history": history.to_dict() if history is not None else None,
        "extra": extra,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _read_checkpoint(path) -> dict:
    """Load and sanity-check a checkpoint file; raises CheckpointError (a ValueError) naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, random bytes, a pickle with disallowed globals, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} is not a readable vaelib checkpoint (corrupt or truncated?): {reason}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a vaelib checkpoint (no '{CHECKPOINT_FORMAT}' header)")
    missing = {"class_name", "config", "state_dict"} - set(payload)
    if missing or not isinstance(payload["state_dict"], dict):
        raise CheckpointError(f"{path} is an incomplete vaelib checkpoint (missing {sorted(missing) or 'state_dict'})")
    return payload


def _apply(payload: dict, path, model=None):
    """Rebuild or check the model and load the weights; returns (model, optimizer_state, history)."""
    from .models import build_model
    from .train import History

    name, config = payload["class_name"], payload["config"]
    if model is None:
        try:
            model = build_model(name, config)
        except (ValueError, TypeError) as err:
            raise CheckpointError(f"{path}: cannot rebuild the model {name}({config}): {err}") from None
    elif type(model).__name__ != name or _plain(getattr(model, "config", None)) != _plain(config):
        raise CheckpointError(f"{path} holds a {name} with config {config}, which does not match the given "
                              f"{type(model).__name__} with config {getattr(model, 'config', None)}")
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: the weights do not fit the model: {str(err).splitlines()[0]}") from None
    history = payload.get("history")
    try:
        history = History.from_dict(history) if history is not None else None
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: unreadable history: {err}") from None
    return model, payload.get("optimizer"), history


def load_checkpoint(path, model=None):
    """Load a checkpoint written by :func:`save_checkpoint`: returns ``(model, optimizer_state, history)``.

    With ``model=None`` the model is rebuilt from the stored class name and config (on the CPU); otherwise the
    weights are loaded into ``model`` in place, after checking that its class and config match. Loading uses
    ``weights_only=True``. A corrupt file or a mismatched model raises :class:`CheckpointError` (a ValueError);
    ``optimizer_state`` (or None) can be passed to ``optimizer.load_state_dict``; ``history`` is a History or None.
    """
    return _apply(_read_checkpoint(path), path, model)
