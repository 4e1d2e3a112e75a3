"""Checkpoints: round trip, plain contents (weights_only), atomic writes, clear errors for corrupt or mismatched files."""
import os

import pytest
import torch

import vaelib
from vaelib.data import load_dataset
from vaelib.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from vaelib.train import History, Trainer


def small_vae(latent_dim=4, seed=0):
    torch.manual_seed(seed)
    return vaelib.VAE(64, hidden=(32,), latent_dim=latent_dim)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A briefly trained VAE with its optimiser and history, saved once."""
    model = small_vae()
    trainer = Trainer(model, verbose=False)
    history = trainer.fit(load_dataset("digits"), epochs=2)
    path = tmp_path_factory.mktemp("ckpt") / "vae.pt"
    save_checkpoint(path, model, trainer.optimizer, history)
    return path, model, trainer.optimizer, history


def assert_state_equal(a, b):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_state_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_state_equal(x, y)
    else:
        assert a == b


def test_round_trip_rebuilds_model_optimizer_and_history(trained):
    path, model, optimizer, history = trained
    loaded, opt_state, loaded_history = load_checkpoint(path)
    assert type(loaded) is vaelib.VAE and loaded.config == model.config
    assert_state_equal(model.state_dict(), loaded.state_dict())
    assert_state_equal(optimizer.state_dict(), opt_state)
    assert loaded_history == history and isinstance(loaded_history, History)
    # The optimiser state fits a fresh Adam on the rebuilt model.
    fresh = torch.optim.Adam(loaded.parameters(), lr=1e-3)
    fresh.load_state_dict(opt_state)
    x = torch.rand(5, 64)
    torch.testing.assert_close(loaded.encode(x)[0], model.encode(x)[0])


def test_load_into_given_model_in_place(trained):
    path, model, _, _ = trained
    target = small_vae(seed=1)
    same, _, _ = load_checkpoint(path, target)
    assert same is target
    assert_state_equal(model.state_dict(), target.state_dict())


def test_file_is_plain_data_loadable_with_weights_only(trained):
    payload = torch.load(trained[0], weights_only=True)
    assert payload["class_name"] == "VAE" and payload["config"]["latent_dim"] == 4
    assert payload["history"]["train_loss"] == trained[3].train_loss


def test_convvae_and_autoencoder_round_trip(tmp_path):
    for model in (vaelib.ConvVAE(image_shape=(1, 8, 8), latent_dim=3), vaelib.Autoencoder(64, hidden=(16,), latent_dim=2)):
        path = save_checkpoint(tmp_path / f"{type(model).__name__}.pt", model)
        loaded, opt_state, history = load_checkpoint(path)
        assert type(loaded) is type(model) and opt_state is None and history is None
        assert_state_equal(model.state_dict(), loaded.state_dict())


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    model = small_vae()
    save_checkpoint(path, model)
    before = path.read_bytes()

    def crash(obj, f, *args, **kwargs):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, small_vae(seed=3))
    assert path.read_bytes() == before            # the old checkpoint is intact
    assert os.listdir(tmp_path) == ["m.pt"]       # and no temporary file is left behind


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "empty"])
def test_corrupt_file_gives_a_clear_error(trained, tmp_path, damage):
    good = trained[0].read_bytes()
    path = tmp_path / "bad.pt"
    path.write_bytes({"random bytes": os.urandom(4096), "truncated": good[: len(good) // 2], "empty": b""}[damage])
    with pytest.raises(CheckpointError, match="not a readable vaelib checkpoint") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and isinstance(info.value, ValueError)


def test_foreign_files_are_refused(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a vaelib checkpoint"):
        load_checkpoint(other)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": "vaelib-checkpoint", "obj": pytest.approx(1.0)}, unsafe)  # arbitrary objects: weights_only refuses
    with pytest.raises(CheckpointError, match="not a readable vaelib checkpoint"):
        load_checkpoint(unsafe)


def test_mismatched_model_gives_a_clear_error(trained):
    path = trained[0]
    with pytest.raises(CheckpointError, match="does not match") as info:
        load_checkpoint(path, small_vae(latent_dim=3))
    assert str(path) in str(info.value) and "latent_dim" in str(info.value)
    with pytest.raises(CheckpointError, match="Autoencoder"):
        load_checkpoint(path, vaelib.Autoencoder(64, hidden=(32,), latent_dim=4))


def _rewrite(path, change):
    """Edit a checkpoint's payload (keeping its weights' checksum valid) and write it back."""
    from vaelib.checkpoint import weights_sha256

    payload = torch.load(path, weights_only=True)
    change(payload)
    payload["weights_sha256"] = weights_sha256(payload["state_dict"])
    torch.save(payload, path)


def test_weights_that_do_not_fit_give_a_clear_error(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, small_vae())
    _rewrite(path, lambda p: p["state_dict"].__setitem__("to_mu.weight", torch.zeros(5, 32)))
    with pytest.raises(CheckpointError, match="does not describe the stored weights"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path, small_vae())


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing.pt")


# ---------------------------------------------------------------- checkpoints you can trust
def _flip_a_weight_byte(path):
    """Flip one bit in the middle of the largest tensor's bytes, inside the file's zip archive."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as z:
        entry = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[entry.header_offset + 26:entry.header_offset + 30])
    raw[entry.header_offset + 30 + name_len + extra_len + entry.file_size // 2] ^= 0x04
    path.write_bytes(bytes(raw))


def test_a_changed_weight_is_refused(trained, tmp_path):
    path = tmp_path / "flipped.pt"
    path.write_bytes(trained[0].read_bytes())
    _flip_a_weight_byte(path)
    torch.load(path, weights_only=True)                  # torch itself reads it without a complaint
    with pytest.raises(CheckpointError, match="do not match the checksum"):
        load_checkpoint(path)
    edited = tmp_path / "edited.pt"
    payload = torch.load(trained[0], weights_only=True)
    payload["state_dict"]["to_mu.bias"][0] += 1e-3       # a changed weight, the old checksum
    torch.save(payload, edited)
    with pytest.raises(CheckpointError, match="do not match the checksum"):
        load_checkpoint(edited, small_vae())


def test_a_newer_format_is_refused_and_the_first_format_still_loads(trained, tmp_path):
    path = tmp_path / "future.pt"
    path.write_bytes(trained[0].read_bytes())
    _rewrite(path, lambda p: p.update(format_version=99))
    with pytest.raises(CheckpointError, match="newer vaelib.*format 99.*upgrade"):
        load_checkpoint(path)
    _rewrite(path, lambda p: (p.update(format_version=1), p.pop("weights_sha256")))   # written by vaelib 0.1's first format
    assert_state_equal(load_checkpoint(path)[0].state_dict(), trained[1].state_dict())


def test_a_config_for_an_absurdly_large_model_is_refused_before_allocating(tmp_path, monkeypatch):
    path = tmp_path / "huge.pt"
    save_checkpoint(path, small_vae())
    _rewrite(path, lambda p: p["config"].update(in_dim=10 ** 7, hidden=[10 ** 6]))   # 4e13 bytes of weights
    allocated = []
    real_linear = torch.nn.Linear.__init__

    def linear(self, i, o, *args, **kwargs):
        if kwargs.get("device") is None and torch.get_default_device().type != "meta":
            allocated.append((i, o))
        real_linear(self, i, o, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Linear, "__init__", linear)
    with pytest.raises(CheckpointError, match="does not describe the stored weights.*20,000,024,000,008 parameters"):
        load_checkpoint(path)
    assert allocated == []


@pytest.mark.parametrize("bad, where", [
    ({"o": object()}, r"extra\['o'\] is a builtins.object"),
    ({"n": [1, __import__("numpy").float64(2.0)]}, r"extra\['n'\]\[1\] is a numpy.float64"),
    ({"f": lambda: 1}, r"extra\['f'\]"),
    ({object(): 1}, "a key of extra"),
])
def test_extra_values_that_cannot_be_read_back_are_refused_before_writing(tmp_path, bad, where):
    path = tmp_path / "m.pt"
    save_checkpoint(path, small_vae())
    before = path.read_bytes()
    with pytest.raises(TypeError, match=where + ".*weights_only"):
        save_checkpoint(path, small_vae(seed=2), extra=bad)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.pt"]


def test_plain_extra_values_round_trip(tmp_path):
    extra = {"a": None, "b": True, "c": 3, "d": 2.5, "e": "text", "f": b"raw", "g": [1, (2, 3)], "h": {"i": {1: 2.0}},
             "t": torch.arange(3), "s": torch.Size([2, 3]), "z": 1 + 2j}
    path = save_checkpoint(tmp_path / "m.pt", small_vae(), extra=extra)
    got = torch.load(path, weights_only=True)["extra"]
    assert torch.equal(got.pop("t"), extra.pop("t")) and got == extra


def test_a_compiled_model_is_saved_as_the_model_it_wraps(tmp_path):
    model = small_vae()
    compiled = torch.compile(model)
    path = save_checkpoint(tmp_path / "compiled.pt", compiled)
    rebuilt, _, _ = load_checkpoint(path)
    assert type(rebuilt) is vaelib.VAE
    assert_state_equal(model.state_dict(), rebuilt.state_dict())
    plain = small_vae(seed=4)
    load_checkpoint(path, plain)                          # loads into the plain model ...
    assert_state_equal(model.state_dict(), plain.state_dict())
    target = small_vae(seed=5)
    again = torch.compile(target)
    assert load_checkpoint(path, again)[0] is again       # ... and into another compiled one
    assert_state_equal(model.state_dict(), target.state_dict())


def test_load_model_returns_the_model_on_the_cpu_in_eval_mode(trained):
    path, model, _, _ = trained
    loaded = vaelib.load_model(path)
    assert type(loaded) is vaelib.VAE and not loaded.training
    assert all(p.device.type == "cpu" for p in loaded.parameters())
    assert_state_equal(model.state_dict(), loaded.state_dict())


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_file_mode_follows_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = save_checkpoint(tmp_path / "m.pt", small_vae())
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


def test_cvae_round_trip_and_load_model(tmp_path):
    torch.manual_seed(0)
    model = vaelib.CVAE(64, 10, hidden=(16,), latent_dim=2)
    path = save_checkpoint(tmp_path / "cvae.pt", model)
    loaded = vaelib.load_model(path)
    assert type(loaded) is vaelib.CVAE and loaded.config == model.config and not loaded.training
    assert_state_equal(model.state_dict(), loaded.state_dict())
    x, y = torch.rand(3, 64), torch.tensor([1, 5, 9])
    torch.testing.assert_close(loaded.encode(x, y), model.encode(x, y))
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(path, vaelib.CVAE(64, 9, hidden=(16,), latent_dim=2))
