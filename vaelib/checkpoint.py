"""Checkpoints: a model (class name, config, weights), its optimiser state and its training history in one file.

Files hold plain dicts, lists, numbers and tensors only, so they load with ``torch.load(weights_only=True)``: a
checkpoint never runs code when it is read. The file also holds a SHA-256 checksum of the weights, so a changed or
damaged weight is refused instead of loaded; a config is checked against the stored weights before any model is
built from it. ``load_model(path)`` is the one call for inference.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch

CHECKPOINT_FORMAT = "vaelib-checkpoint"
#: 1: the first format; 2: adds ``weights_sha256``.
CHECKPOINT_VERSION = 2

# What weights_only loading reads back (exact types: subclasses such as numpy's float64 are refused by it).
_PLAIN_SCALARS = (type(None), bool, int, float, complex, str, bytes)


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


def unwrap(model):
    """The model itself: a ``torch.compile``d model is saved, compared and loaded as the module it wraps."""
    while isinstance(getattr(model, "_orig_mod", None), torch.nn.Module):
        model = model._orig_mod
    return model


def _check_plain(value, where: str) -> None:
    """Refuse (TypeError) a value that ``torch.load(weights_only=True)`` could not read back, naming where it is."""
    if type(value) in _PLAIN_SCALARS or type(value) in (torch.Tensor, torch.nn.Parameter):
        return
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple, torch.Size):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if type(value) is dict:
        for k, v in value.items():
            _check_plain(k, f"a key of {where}")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise TypeError(f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which a checkpoint cannot hold: "
                    f"checkpoints are read with weights_only=True, which loads only None, bools, numbers, strings, "
                    f"bytes, lists, tuples, dicts and tensors (convert it, e.g. with float() or .tolist())")


def weights_sha256(state_dict: dict) -> str:
    """SHA-256 over the weights' names, dtypes, shapes and bytes, in name order (what checkpoints store)."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_checkpoint(path, model, optimizer=None, history=None, extra: dict | None = None) -> Path:
    """Write model (class name, config, weights), optimiser state and history to ``path``, atomically.

    The file holds plain dicts, lists, numbers and tensors only, so it loads with ``torch.load(weights_only=True)``;
    ``extra`` must be such plain values too (anything else raises TypeError before a byte is written).
    It is written to a temporary file in the same folder and then renamed, so a crash never leaves half a file;
    its permissions follow the umask, like any file the user creates (readable by others under the usual 022).
    ``optimizer`` may be an optimiser or its ``state_dict()``. A ``torch.compile``d model is saved as the model it
    wraps, so the checkpoint loads into (and rebuilds) the plain model.
    """
    path = Path(path)
    if extra is not None:
        _check_plain(extra, "extra")
    model = unwrap(model)
    if optimizer is not None and not isinstance(optimizer, dict):
        optimizer = optimizer.state_dict()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "vaelib_version": _version(),
        "class_name": type(model).__name__,
        "config": _plain(model.config),
        "state_dict": state,
        "weights_sha256": weights_sha256(state),
        "optimizer": optimizer,
        "history": history.to_dict() if history is not None else None,
        "extra": extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):  # not on Windows, whose files have no such modes
                os.fchmod(f.fileno(), 0o666 & ~_umask())
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
    """Load and check a checkpoint file; raises CheckpointError (a ValueError) naming the file.

    A file that cannot be opened raises the OSError of ``open`` (FileNotFoundError, PermissionError, ...).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        try:
            payload = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated zip, random bytes, a pickle with disallowed globals, ...
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"{path} is not a readable vaelib checkpoint (corrupt or truncated?): "
                                  f"{reason}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a vaelib checkpoint (no '{CHECKPOINT_FORMAT}' header)")
    version = payload.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path}: unreadable format_version {version!r}")
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} was written by a newer vaelib ({payload.get('vaelib_version')}, checkpoint "
                              f"format {version}); this vaelib ({_version()}) reads formats up to "
                              f"{CHECKPOINT_VERSION}: upgrade vaelib to load it")
    missing = {"class_name", "config", "state_dict"} - set(payload)
    state = payload.get("state_dict")
    if missing or not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is an incomplete vaelib checkpoint (missing {sorted(missing) or 'state_dict'})")
    if not isinstance(payload["config"], dict) or not isinstance(payload["class_name"], str):
        raise CheckpointError(f"{path}: the model's class name and config are not a string and a dict")
    if version >= 2 and payload.get("weights_sha256") != weights_sha256(state):
        raise CheckpointError(f"{path}: the weights do not match the checksum stored with them: the file was changed "
                              f"or damaged after it was written")
    return payload


def _check_config(name: str, config: dict, state: dict, path) -> None:
    """Build the model on the meta device (no memory) and compare its weights' shapes with the stored ones, so a
    config that would build a huge model is refused before anything is allocated."""
    from .models import build_model

    try:
        with torch.device("meta"):
            skeleton = build_model(name, config)
    except (ValueError, TypeError, RuntimeError, OverflowError) as err:
        raise CheckpointError(f"{path}: cannot rebuild the model {name}({config}): {err}") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in state.items()}
    if expected != stored:
        count = lambda shapes: sum(torch.Size(s).numel() for s in shapes.values())  # noqa: E731
        raise CheckpointError(f"{path}: the config does not describe the stored weights: {name}({config}) has "
                              f"{count(expected):,} parameters, the file holds {count(stored):,}")


def _apply(payload: dict, path, model=None):
    """Rebuild or check the model and load the weights; returns (model, optimizer_state, history)."""
    from .models import build_model
    from .train import History

    name, config, state = payload["class_name"], payload["config"], payload["state_dict"]
    given = model
    if model is None:
        _check_config(name, config, state, path)
        model = build_model(name, config)
    else:
        model = unwrap(model)
        if type(model).__name__ != name or _plain(getattr(model, "config", None)) != _plain(config):
            raise CheckpointError(f"{path} holds a {name} with config {config}, which does not match the given "
                                  f"{type(model).__name__} with config {getattr(model, 'config', None)}")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: the weights do not fit the model: {str(err).splitlines()[0]}") from None
    history = payload.get("history")
    try:
        history = History.from_dict(history) if history is not None else None
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: unreadable history: {err}") from None
    return (given if given is not None else model), payload.get("optimizer"), history


def load_checkpoint(path, model=None):
    """Load a checkpoint written by :func:`save_checkpoint`: returns ``(model, optimizer_state, history)``.

    With ``model=None`` the model is rebuilt from the stored class name and config (on the CPU); otherwise the
    weights are loaded into ``model`` in place (a ``torch.compile``d model or the plain one), after checking that
    its class and config match. Loading uses ``weights_only=True``. A corrupt or changed file, a newer format or a
    mismatched model raises :class:`CheckpointError` (a ValueError); a file that cannot be opened, the OSError of
    ``open``. ``optimizer_state`` (or None) can be passed to ``optimizer.load_state_dict``; ``history`` is a
    History or None.
    """
    return _apply(_read_checkpoint(path), path, model)


def load_model(path):
    """The model stored in a checkpoint (or a model-cache entry), rebuilt on the CPU and in eval mode."""
    model, _, _ = load_checkpoint(path)
    return model.eval()


def check_destination(path, model, overwrite: bool = False) -> None:
    """Before training writes checkpoints to ``path``: refuse (CheckpointError) a folder, and, unless ``overwrite``,
    a file that is not a checkpoint of this model's class and config (which training would overwrite)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint={str(path)!r} is a folder; give a file path, e.g. {str(path / 'run.pt')!r}")
    if overwrite or not path.exists():
        return
    model = unwrap(model)
    try:
        payload = _read_checkpoint(path)
    except (CheckpointError, OSError) as err:
        raise CheckpointError(f"{path} exists and is not a usable vaelib checkpoint ({err}); training would overwrite "
                              f"it: give another path, or pass overwrite=True to replace it") from None
    if payload["class_name"] != type(model).__name__ or _plain(payload["config"]) != _plain(model.config):
        raise CheckpointError(f"{path} holds a checkpoint of another model ({payload['class_name']} with config "
                              f"{payload['config']}); training this {type(model).__name__} (config {model.config}) "
                              f"would overwrite it: give another path, or pass overwrite=True to replace it")
