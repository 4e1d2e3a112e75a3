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


def test_weights_that_do_not_fit_give_a_clear_error(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, small_vae())
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["to_mu.weight"] = torch.zeros(5, 32)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing.pt")
