"""The model cache: a hit reuses the trained model without training; anything unusable is retrained, never mis-loaded."""
import os

import pytest
import torch

import vaelib
from vaelib import checkpoint, train as train_module
from vaelib.data import load_dataset
from vaelib.cache import cache_key, cached_fit, fingerprint
from vaelib.checkpoint import load_checkpoint


def small_vae(seed=0, latent_dim=4):
    torch.manual_seed(seed)
    return vaelib.VAE(64, hidden=(32,), latent_dim=latent_dim)


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.fixture
def counted(monkeypatch):
    """Count the trainings cached_fit starts."""
    calls = []
    real_fit = train_module.fit

    def fit(*args, **kwargs):
        calls.append(kwargs)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(train_module, "fit", fit)
    return calls


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits"), load_dataset("digits", split="test")


def test_hit_reuses_the_model_without_training(tmp_path, counted, digits, capsys):
    first = small_vae()
    h1 = cached_fit(first, digits[0], epochs=2, test=digits[1], cache_dir=tmp_path, verbose=False)
    assert len(counted) == 1 and len(list(tmp_path.glob("*.pt"))) == 1

    second = small_vae(seed=5)                      # same configuration, other initial weights
    assert not same_weights(first, second)
    h2 = cached_fit(second, digits[0], epochs=2, test=digits[1], cache_dir=tmp_path, verbose=True)
    assert len(counted) == 1                        # no second training
    assert h2 == h1 and same_weights(first, second)
    assert "model cache" in capsys.readouterr().out


def test_environment_variable_names_the_folder(tmp_path, monkeypatch, counted, digits):
    monkeypatch.setenv("VAELIB_CACHE", str(tmp_path / "env-cache"))
    cached_fit(small_vae(), digits[0], epochs=1, verbose=False)
    assert len(list((tmp_path / "env-cache").glob("VAE-*.pt"))) == 1


@pytest.mark.parametrize("change", [dict(epochs=2), dict(seed=1), dict(lr=2e-3), dict(beta=0.5),
                                    dict(binarize="dynamic"), dict(data="one pixel"), dict(latent_dim=3),
                                    dict(kl_warmup=1), dict(free_bits=0.25)])
def test_any_change_in_the_key_trains_again(tmp_path, counted, digits, change):
    images = digits[0][0]
    cached_fit(small_vae(), images, epochs=1, cache_dir=tmp_path, verbose=False)
    kwargs = dict(epochs=1, cache_dir=tmp_path, verbose=False)
    data = images
    model = small_vae(latent_dim=change.pop("latent_dim", 4))
    if change.pop("data", None):
        data = images.clone()
        data[0, 0, 0, 0] = 0.5 if data[0, 0, 0, 0] != 0.5 else 0.25
    kwargs.update(change)
    cached_fit(model, data, **kwargs)
    assert len(counted) == 2 and len(list(tmp_path.glob("*.pt"))) == 2


def test_corrupt_entry_is_retrained_and_overwritten(tmp_path, counted, digits, capsys):
    model = small_vae()
    h1 = cached_fit(model, digits[0], epochs=1, cache_dir=tmp_path, verbose=False)
    (entry,) = tmp_path.glob("*.pt")
    entry.write_bytes(b"\x00garbage" * 100)

    again = small_vae()
    h2 = cached_fit(again, digits[0], epochs=1, cache_dir=tmp_path, verbose=False)
    assert len(counted) == 2
    err = capsys.readouterr().err
    assert "training again" in err and len(err.strip().splitlines()) == 1
    # Trained from the same start, so the same result; and the entry is whole again.
    assert h2.train_loss == h1.train_loss and same_weights(model, again)
    assert same_weights(load_checkpoint(entry)[0], again)


def test_stale_entry_is_not_mis_loaded(tmp_path, counted, digits, capsys):
    cached_fit(small_vae(), digits[0], epochs=1, cache_dir=tmp_path, verbose=False)
    cached_fit(small_vae(), digits[0], epochs=1, seed=3, cache_dir=tmp_path, verbose=False)
    a, b = sorted(tmp_path.glob("*.pt"))
    a.write_bytes(b.read_bytes())                   # an entry whose contents belong to another key
    model = small_vae()
    cached_fit(model, digits[0], epochs=1, cache_dir=tmp_path, verbose=False)
    cached_fit(small_vae(), digits[0], epochs=1, seed=3, cache_dir=tmp_path, verbose=False)
    assert len(counted) == 4 - 1                    # exactly one of the two was retrained
    assert "another key" in capsys.readouterr().err


def test_unusable_entry_does_not_change_the_starting_weights(tmp_path, counted, digits):
    """A mismatched entry must not leak its weights into the model that is then trained."""
    reference = small_vae()
    cached_fit(reference, digits[0], epochs=1, cache_dir=tmp_path / "ref", verbose=False)

    key, _ = cache_key(small_vae(), digits[0], epochs=1)
    path = tmp_path / f"VAE-{key[:24]}.pt"
    other = small_vae(seed=9)
    checkpoint.save_checkpoint(path, other, None, None, extra={"cache_key": "not this one"})
    model = small_vae()
    cached_fit(model, digits[0], epochs=1, cache_dir=tmp_path, verbose=False)
    assert same_weights(model, reference)


def test_interrupted_training_propagates_and_is_not_cached(tmp_path, monkeypatch, digits):
    steps = []
    real_step = train_module.Trainer._step

    def step(self, xb, *args, **kwargs):
        steps.append(1)
        if len(steps) == 15:                            # Ctrl-C in the second of two epochs
            raise KeyboardInterrupt
        return real_step(self, xb, *args, **kwargs)

    monkeypatch.setattr(train_module.Trainer, "_step", step)
    with pytest.raises(KeyboardInterrupt):
        cached_fit(small_vae(), digits[0], epochs=2, cache_dir=tmp_path, verbose=False)
    assert list(tmp_path.iterdir()) == []


def test_models_trained_by_another_trainer_version_are_not_reused(tmp_path, counted, digits, monkeypatch):
    cached_fit(small_vae(), digits[0], epochs=1, cache_dir=tmp_path, verbose=False)
    key, spec = cache_key(small_vae(), digits[0], epochs=1)
    assert spec["trainer_version"] == train_module.TRAINER_VERSION
    monkeypatch.setattr(train_module, "TRAINER_VERSION", train_module.TRAINER_VERSION + 1)
    assert cache_key(small_vae(), digits[0], epochs=1)[0] != key
    cached_fit(small_vae(), digits[0], epochs=1, cache_dir=tmp_path, verbose=False)
    assert len(counted) == 2


def test_default_options_keep_the_keys_of_entries_stored_before_they_existed(tmp_path, counted, digits):
    """Options at their defaults stay out of the key, so older entries are still hits; their history, stored
    without the KL weights, gets the constant beta that the key guarantees."""
    key, spec = cache_key(small_vae(), digits[0], epochs=1, beta=0.5)
    assert set(spec["fit"]) == {"epochs", "batch_size", "lr", "seed", "beta", "binarize"}
    assert cache_key(small_vae(), digits[0], epochs=1, beta=0.5, kl_warmup=0, free_bits=0.0)[0] == key
    assert cache_key(small_vae(), digits[0], epochs=1, beta=0.5, kl_warmup=2)[0] != key
    cached_fit(small_vae(), digits[0], epochs=2, beta=0.5, cache_dir=tmp_path, verbose=False)
    (entry,) = tmp_path.glob("*.pt")
    model, _, history = load_checkpoint(entry)
    extra = torch.load(entry, weights_only=True)["extra"]
    history.beta = []                                   # as an entry written before History.beta existed
    checkpoint.save_checkpoint(entry, model, None, history, extra=extra)
    h = cached_fit(small_vae(), digits[0], epochs=2, beta=0.5, cache_dir=tmp_path, verbose=False)
    assert len(counted) == 1 and h.beta == [0.5, 0.5]


# ---------------------------------------------------------------- shared and read-only storage
def test_entries_are_readable_by_others_as_the_umask_allows(tmp_path, digits):
    old = os.umask(0o022)
    try:
        cached_fit(small_vae(), digits[0], epochs=1, cache_dir=tmp_path / "cache", verbose=False)
    finally:
        os.umask(old)
    (entry,) = (tmp_path / "cache").glob("*.pt")
    assert entry.stat().st_mode & 0o777 == 0o644 and (tmp_path / "cache").stat().st_mode & 0o777 == 0o755


def _one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_an_entry_that_is_a_folder_is_reported_and_retrained(tmp_path, counted, digits, capsys):
    key, _ = cache_key(small_vae(), digits[0], epochs=1)
    (tmp_path / f"VAE-{key[:24]}.pt").mkdir()
    h = cached_fit(small_vae(), digits[0], epochs=1, cache_dir=tmp_path, verbose=False)
    assert len(counted) == 1 and len(h.train_loss) == 1
    assert "is a folder" in _one_line(capsys.readouterr().err)


def test_an_unreadable_entry_is_reported_as_such_and_retrained(tmp_path, counted, digits, capsys, monkeypatch):
    """Another user's entry that this user may not read (simulated: as root, chmod does not stop reads)."""
    import builtins
    from pathlib import Path

    cached_fit(small_vae(), digits[0], epochs=1, cache_dir=tmp_path, verbose=False)
    (entry,) = tmp_path.glob("*.pt")
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and Path(file) == entry:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    h = cached_fit(small_vae(), digits[0], epochs=1, cache_dir=tmp_path, verbose=False)
    assert len(counted) == 2 and len(h.train_loss) == 1
    line = _one_line(capsys.readouterr().err)
    assert "cannot be read: Permission denied" in line and "corrupt" not in line


def test_a_foreign_file_in_the_entry_s_place_is_reported_and_retrained(tmp_path, counted, digits, capsys):
    key, _ = cache_key(small_vae(), digits[0], epochs=1)
    torch.save({"weights": torch.zeros(3)}, tmp_path / f"VAE-{key[:24]}.pt")
    cached_fit(small_vae(), digits[0], epochs=1, cache_dir=tmp_path, verbose=False)
    assert len(counted) == 1 and "not a vaelib checkpoint" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("place", ["under a file", "not writable"])
def test_a_cache_folder_that_cannot_be_written_never_costs_the_training(tmp_path, counted, digits, capsys,
                                                                         monkeypatch, place):
    if place == "under a file":
        (tmp_path / "file").write_text("")
        cache_dir = tmp_path / "file" / "cache"           # cannot be created
    else:
        cache_dir = tmp_path / "cache"                    # another user's folder (simulated: as root, chmod does not stop writes)

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(checkpoint.tempfile, "mkstemp", refuse)
    model = small_vae()
    h = cached_fit(model, digits[0], epochs=2, test=digits[1], cache_dir=cache_dir, verbose=False)
    reference = small_vae()
    expected = train_module.fit(reference, digits[0], epochs=2, test=digits[1], verbose=False)
    assert h.train_loss == expected.train_loss and h.test_loss == expected.test_loss and len(h.test_loss) == 2
    assert same_weights(model, reference)
    assert "could not store" in _one_line(capsys.readouterr().err)
def test_fingerprint_tracks_content_shape_and_dtype():
    x = torch.rand(10, 1, 8, 8)
    f = fingerprint(x)
    assert f == fingerprint((x.clone(), torch.zeros(10)))
    y = x.clone()
    y[3, 0, 2, 2] += 1e-3
    assert fingerprint(y)["sha256"] != f["sha256"]
    assert fingerprint(x.reshape(10, 64)) != f
    assert fingerprint(x.double()) != f


# ---------------------------------------------------------------- denoising runs
def test_corruptions_are_part_of_the_key_and_lambdas_are_refused(tmp_path, counted, digits):
    from vaelib.data import gaussian_noise, masking_noise

    kw = dict(epochs=1, cache_dir=tmp_path, verbose=False)
    cached_fit(small_vae(), digits[0], corrupt=gaussian_noise(0.5), **kw)
    h = cached_fit(small_vae(), digits[0], corrupt=gaussian_noise(0.5), **kw)      # a hit
    assert len(counted) == 1 and counted[0]["corrupt"].config == {"name": "gaussian_noise", "sigma": 0.5}
    for other in (gaussian_noise(0.3), masking_noise(0.5), None):
        cached_fit(small_vae(), digits[0], corrupt=other, **kw)
    assert len(counted) == 4 and len(list(tmp_path.glob("*.pt"))) == 4
    assert len(h.train_loss) == 1

    def fixed(x):
        return x
    fixed.config = {"name": "identity"}                   # a function of one's own, with a stable description
    cached_fit(small_vae(), digits[0], corrupt=fixed, **kw)
    assert len(counted) == 5
    for bad in (lambda x: x, fixed.__call__, type("Odd", (), {"config": {"f": object()}, "__call__": fixed})()):
        with pytest.raises(ValueError, match="has no stable description.*gaussian_noise.*masking_noise"):
            cached_fit(small_vae(), digits[0], corrupt=bad, **kw)
    assert len(counted) == 5


# ---------------------------------------------------------------- conditional models
def test_a_cvae_is_cached_and_keyed_by_its_labels(tmp_path, counted, digits):
    def cvae(seed=0):
        torch.manual_seed(seed)
        return vaelib.CVAE(64, 10, hidden=(32,), latent_dim=2)

    kw = dict(epochs=1, cache_dir=tmp_path, verbose=False)
    first = cvae()
    h1 = cached_fit(first, digits[0], test=digits[1], **kw)
    second = cvae(seed=3)
    h2 = cached_fit(second, digits[0], test=digits[1], **kw)
    assert len(counted) == 1 and h2 == h1 and same_weights(first, second)
    (entry,) = tmp_path.glob("CVAE-*.pt")
    assert type(vaelib.load_model(entry)) is vaelib.CVAE
    images, labels = digits[0]
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    cached_fit(cvae(), (images, shuffled), test=digits[1], **kw)                  # same images, other labels
    assert len(counted) == 2
    # A VAE's key ignores labels, as before.
    assert cache_key(small_vae(), (images, shuffled), epochs=1)[0] == cache_key(small_vae(), digits[0], epochs=1)[0]
