"""fit / Trainer on scikit-learn's digits: learning, determinism, bad input, divergence, interruption, binarization."""
import numpy as np
import pytest
import torch

import vaelib
from vaelib import losses
from vaelib.data import load_dataset
from vaelib.train import History, Trainer, TrainingDiverged, _set_flush_denormal, fit, pick_device

STEPS_PER_EPOCH = 12  # 1500 digits / batch 128, rounded up


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits"), load_dataset("digits", split="test")


def small_vae(seed=0, cls=vaelib.VAE, **kw):
    torch.manual_seed(seed)
    return cls(64, hidden=(32,), latent_dim=4, **kw)


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_fit_lowers_the_loss_and_records_history(digits):
    train, test = digits
    model = small_vae()
    x_test = test[0]
    before = -losses.elbo(model, x_test, samples=20).mean().item()
    h = fit(model, train, epochs=8, test=test, verbose=False)
    assert isinstance(h, History)
    assert len(h.train_loss) == len(h.test_loss) == len(h.epoch_seconds) == len(h.train_recon) == len(h.train_kl) == 8
    assert all(s > 0 for s in h.epoch_seconds)
    assert h.train_loss[-1] < h.train_loss[0] - 5 and h.test_loss[-1] < h.test_loss[0] - 5
    # The recorded test loss is the negative ELBO: compare with an independent 20-sample estimate.
    after = -losses.elbo(model, x_test, samples=20).mean().item()
    assert after < before - 5
    assert abs(h.test_loss[-1] - after) < 0.5
    np.testing.assert_allclose(h.train_loss, np.add(h.train_recon, h.train_kl), rtol=1e-5)
    assert h.beta == [1.0] * 8


def test_beta_weighs_the_kl_term(digits):
    h = fit(small_vae(), digits[0], epochs=2, beta=0.25, verbose=False)
    np.testing.assert_allclose(h.train_loss, np.add(h.train_recon, 0.25 * np.array(h.train_kl)), rtol=1e-5)


def test_autoencoder_trains_on_reconstruction_loss(digits):
    train, test = digits
    model = small_vae(cls=vaelib.Autoencoder)
    h = fit(model, train, epochs=6, test=test, verbose=False)
    assert h.train_recon == [] and h.train_kl == [] and h.beta == []
    assert h.test_loss[-1] < h.test_loss[0] - 3
    # An autoencoder is deterministic: the test loss is exactly the mean reconstruction loss.
    with torch.no_grad():
        oracle = losses.reconstruction_loss(model, test[0]).mean().item()
    assert h.test_loss[-1] == pytest.approx(oracle, rel=1e-5)


def test_same_seed_same_run_and_global_rng_untouched(digits):
    runs = []
    for _ in range(2):
        model = small_vae()
        state = torch.get_rng_state()
        h = fit(model, digits[0], epochs=3, test=digits[1], seed=7, verbose=False)
        assert torch.equal(torch.get_rng_state(), state)  # fit leaves the global RNG as it found it
        runs.append((h, weights(model)))
    assert runs[0][0].train_loss == runs[1][0].train_loss and runs[0][0].test_loss == runs[1][0].test_loss
    assert_same_weights(runs[0][1], runs[1][1])
    other = small_vae()
    h = fit(other, digits[0], epochs=3, seed=8, verbose=False)
    assert h.train_loss != runs[0][0].train_loss


@pytest.mark.parametrize("form", ["pair", "tensor", "flat", "numpy"])
def test_accepted_data_forms(digits, form):
    images = digits[0][0]
    data = {"pair": digits[0], "tensor": images, "flat": images.reshape(-1, 64), "numpy": images.numpy()}[form]
    h = fit(small_vae(), data, epochs=1, verbose=False)
    reference = fit(small_vae(), images, epochs=1, verbose=False)
    assert h.train_loss == reference.train_loss


def _bad(images):
    return {
        "nan": images.clone().index_fill_(0, torch.tensor([3]), float("nan")),
        "inf": images.clone().index_fill_(0, torch.tensor([3]), float("inf")),
        "above one": images * 2,
        "negative": images - 0.5,
    }


@pytest.mark.parametrize("case, message", [
    ("nan", "NaN or infinite"), ("inf", "NaN or infinite"), ("above one", r"\[0, 1\]"), ("negative", r"\[0, 1\]"),
])
@pytest.mark.parametrize("where", ["train", "test"])
def test_bad_values_refused_before_training(digits, case, message, where):
    images = digits[0][0]
    bad = _bad(images)[case]
    model = small_vae()
    before = weights(model)
    kwargs = dict(train=bad) if where == "train" else dict(train=images, test=bad)
    with pytest.raises(ValueError, match=message):
        fit(model, epochs=1, verbose=False, **kwargs)
    assert_same_weights(before, weights(model))


def test_gaussian_decoder_accepts_values_outside_unit_interval(digits):
    images = digits[0][0]
    fit(small_vae(likelihood="gaussian"), images * 2 - 0.5, epochs=1, verbose=False)
    with pytest.raises(ValueError, match="NaN or infinite"):
        fit(small_vae(likelihood="gaussian"), _bad(images)["nan"], epochs=1, verbose=False)


@pytest.mark.parametrize("data", [torch.rand(10, 1, 28, 28), torch.rand(10, 63), torch.rand(10)])
def test_wrong_feature_size_names_the_expected_size(data):
    with pytest.raises(ValueError, match=r"expects 64 features per example"):
        fit(small_vae(), data, epochs=1, verbose=False)


@pytest.mark.parametrize("data, message", [
    (torch.zeros(0, 1, 8, 8), "64 features"),
    ((torch.rand(10, 1, 8, 8) * 255).to(torch.uint8), "float images"),
])
def test_empty_or_integer_data_refused(data, message):
    with pytest.raises(ValueError, match=message):
        fit(small_vae(), data, epochs=1, verbose=False)


@pytest.mark.parametrize("kwargs, name", [
    (dict(epochs=0), "epochs"), (dict(epochs=1.5), "epochs"), (dict(epochs=1, batch_size=0), "batch_size"),
    (dict(epochs=1, lr=-1.0), "lr"), (dict(epochs=1, beta=-1.0), "beta"), (dict(epochs=1, binarize="half"), "binarize"),
])
def test_bad_arguments_refused(digits, kwargs, name):
    with pytest.raises(ValueError, match=name):
        fit(small_vae(), digits[0], verbose=False, **kwargs)


class NaNAfter(vaelib.VAE):
    """A VAE whose decoder starts returning NaN after ``nan_after`` training-mode calls."""

    nan_after = 10 ** 9
    calls = 0

    def decode(self, z):
        out = super().decode(z)
        if self.training:
            self.calls += 1
            if self.calls > self.nan_after:
                return out * float("nan")
        return out


def test_nan_loss_stops_and_keeps_last_good_weights(digits):
    good = small_vae()
    fit(good, digits[0], epochs=2, verbose=False)   # what the weights are after 2 clean epochs

    model = small_vae(cls=NaNAfter)
    model.nan_after = 2 * STEPS_PER_EPOCH + 3       # the loss turns NaN in the 4th step of epoch 3
    trainer = Trainer(model, verbose=False)
    with pytest.raises(TrainingDiverged, match="epoch 3") as info:
        trainer.fit(digits[0], epochs=5)
    assert isinstance(info.value, FloatingPointError)
    assert_same_weights(weights(good), weights(model))
    assert len(trainer.history.train_loss) == 2


def test_nan_in_the_first_epoch_restores_the_initial_weights(digits):
    model = small_vae(cls=NaNAfter)
    start = weights(model)
    model.nan_after = 0
    with pytest.raises(TrainingDiverged):
        fit(model, digits[0], epochs=2, lr=1e-2, verbose=False)
    assert_same_weights(start, weights(model))


class InterruptAt(Trainer):
    """Raises KeyboardInterrupt (as Ctrl-C would) at a given optimiser step."""

    def __init__(self, *args, interrupt_at, **kwargs):
        super().__init__(*args, **kwargs)
        self.interrupt_at, self.steps = interrupt_at, 0

    def _step(self, xb, *args, **kwargs):
        self.steps += 1
        if self.steps == self.interrupt_at:
            raise KeyboardInterrupt
        return super()._step(xb, *args, **kwargs)


def test_keyboard_interrupt_keeps_last_completed_epoch_and_propagates(digits):
    good = small_vae()
    expected = fit(good, digits[0], epochs=2, test=digits[1], verbose=False)

    model = small_vae()
    trainer = InterruptAt(model, verbose=False, interrupt_at=2 * STEPS_PER_EPOCH + 5)
    with pytest.raises(KeyboardInterrupt, match="epoch 3.*last completed epoch \\(2\\)"):
        trainer.fit(digits[0], epochs=4, test=digits[1])
    h = trainer.history                                   # the history so far stays on the Trainer
    assert h.train_loss == expected.train_loss and h.test_loss == expected.test_loss
    assert_same_weights(weights(good), weights(model))


def test_ctrl_c_stops_a_loop_of_fits(digits, monkeypatch):
    """Chapter 7's beta sweep is a loop of fit calls: Ctrl-C in the second one must end the loop, not only the fit."""
    steps, started = [], []
    original = Trainer._step

    def step(self, xb, *args, **kwargs):
        steps.append(1)
        if len(steps) == STEPS_PER_EPOCH + 3:             # in the first epoch of the second training
            raise KeyboardInterrupt
        return original(self, xb, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_step", step)
    with pytest.raises(KeyboardInterrupt):
        for beta in (0.5, 1.0, 2.0):
            started.append(beta)
            fit(small_vae(), digits[0], epochs=1, beta=beta, verbose=False)
    assert started == [0.5, 1.0]


def test_interrupt_during_test_evaluation_leaves_a_consistent_history(digits, monkeypatch):
    good = small_vae()
    fit(good, digits[0], epochs=2, test=digits[1], verbose=False)
    calls = []
    original = Trainer._evaluate

    def evaluate(self, x, *args):
        calls.append(1)
        if len(calls) == 3:  # the test pass after the 3rd epoch's training
            raise KeyboardInterrupt
        return original(self, x, *args)

    monkeypatch.setattr(Trainer, "_evaluate", evaluate)
    model = small_vae()
    trainer = Trainer(model, verbose=False)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(digits[0], epochs=4, test=digits[1])
    h = trainer.history
    lengths = {len(h.train_loss), len(h.test_loss), len(h.epoch_seconds), len(h.train_recon), len(h.train_kl),
               len(h.beta)}
    assert lengths == {2}
    assert_same_weights(weights(good), weights(model))


def test_ctrl_c_while_the_checkpoint_is_written_leaves_it_at_the_model_s_epoch(digits, tmp_path, monkeypatch):
    from vaelib import train as train_module
    from vaelib.checkpoint import load_checkpoint

    calls = []
    real_save = train_module.save_checkpoint

    def save(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:                               # Ctrl-C while epoch 3's checkpoint is being written
            raise KeyboardInterrupt
        return real_save(*args, **kwargs)

    monkeypatch.setattr(train_module, "save_checkpoint", save)
    path = tmp_path / "run.pt"
    model = small_vae()
    trainer = Trainer(model, verbose=False, checkpoint=path)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(digits[0], epochs=5)
    stored, _, history = load_checkpoint(path)
    assert len(history.train_loss) == len(trainer.history.train_loss) == 3
    assert_same_weights(weights(stored), weights(model))


def test_resumed_run_ends_exactly_as_the_run_done_in_one_go(digits, tmp_path, monkeypatch, capsys):
    train = load_dataset("digits", binarize="dynamic")    # the binarization is random too
    test = digits[1]
    whole = small_vae()
    expected = fit(whole, train, epochs=5, test=test, verbose=False, checkpoint=tmp_path / "whole.pt")

    path = tmp_path / "run.pt"
    trainer = InterruptAt(small_vae(), verbose=False, checkpoint=path, interrupt_at=2 * STEPS_PER_EPOCH + 7)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(train, epochs=5, test=test)
    # "Rerun the same cell": a fresh model with the initial weights, the same call with resume=True.
    model = small_vae()
    h = fit(model, train, epochs=5, test=test, checkpoint=path, resume=True)
    err = capsys.readouterr().err
    assert "resuming" in err and "after epoch 2 of 5" in err
    assert_same_weights(weights(whole), weights(model))
    for name in ("train_loss", "test_loss", "train_recon", "train_kl", "beta"):
        assert getattr(h, name) == getattr(expected, name), name
    assert len(h.epoch_seconds) == 5

    # Once more: the run is complete, so fit returns at once, without training.
    monkeypatch.setattr(Trainer, "_train_epoch", lambda *args: pytest.fail("trained a complete run"))
    again = small_vae()
    h2 = fit(again, train, epochs=5, test=test, checkpoint=path, resume=True, verbose=False)
    assert h2 == h and h2 is not h
    assert_same_weights(weights(whole), weights(again))
    with pytest.raises(ValueError, match="holds 5 epochs, more than epochs=3"):
        fit(small_vae(), train, epochs=3, checkpoint=path, resume=True, verbose=False)


def test_resume_without_a_checkpoint_file_starts_the_run(digits, tmp_path):
    path = tmp_path / "new.pt"
    model = small_vae()
    h = fit(model, digits[0], epochs=2, checkpoint=path, resume=True, verbose=False)
    reference = small_vae()
    assert h.train_loss == fit(reference, digits[0], epochs=2, verbose=False).train_loss
    assert path.is_file()
    with pytest.raises(ValueError, match="checkpoint=PATH"):
        fit(small_vae(), digits[0], epochs=2, resume=True, verbose=False)


def test_checkpoint_path_is_checked_before_training(digits, tmp_path, monkeypatch):
    from vaelib.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    other = tmp_path / "other.pt"
    save_checkpoint(other, small_vae(), None, None)       # another model's checkpoint (latent_dim 4 vs 3)
    before = other.read_bytes()
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint")
    monkeypatch.setattr(Trainer, "_train_epoch", lambda *args: pytest.fail("trained before refusing"))
    with pytest.raises(CheckpointError, match="is a folder"):
        fit(small_vae(), digits[0], epochs=1, checkpoint=tmp_path, verbose=False)
    with pytest.raises(CheckpointError, match="another model.*overwrite=True"):
        fit(vaelib.VAE(64, hidden=(32,), latent_dim=3), digits[0], epochs=1, checkpoint=other, verbose=False)
    with pytest.raises(CheckpointError, match="another model"):
        fit(vaelib.Autoencoder(64, hidden=(32,), latent_dim=4), digits[0], epochs=1, checkpoint=other, verbose=False)
    with pytest.raises(CheckpointError, match="not a usable vaelib checkpoint.*overwrite=True"):
        fit(small_vae(), digits[0], epochs=1, checkpoint=notes, verbose=False)
    assert other.read_bytes() == before and notes.read_text() == "not a checkpoint"

    monkeypatch.undo()
    model = vaelib.VAE(64, hidden=(32,), latent_dim=3)
    fit(model, digits[0], epochs=1, checkpoint=other, overwrite=True, verbose=False)
    assert load_checkpoint(other)[0].config == model.config


def _epoch_inputs(monkeypatch):
    seen = []
    original = Trainer._train_epoch

    def spy(self, x, gen, bar, **kwargs):
        seen.append(x.clone())
        return original(self, x, gen, bar, **kwargs)

    monkeypatch.setattr(Trainer, "_train_epoch", spy)
    return seen


def test_dynamic_binarization_draws_fresh_samples_each_epoch(digits, monkeypatch):
    seen = _epoch_inputs(monkeypatch)
    grey = digits[0][0].reshape(-1, 64)
    fit(small_vae(), load_dataset("digits", binarize="dynamic"), epochs=3, verbose=False)
    assert len(seen) == 3
    for x in seen:
        assert set(x.unique().tolist()) == {0.0, 1.0}
        ones = torch.where(grey == 1)
        zeros = torch.where(grey == 0)
        assert bool((x[ones] == 1).all()) and bool((x[zeros] == 0).all())
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    # Bernoulli samples: on average, a pixel is on with probability equal to its grey value.
    assert abs(float(torch.stack(seen).mean()) - float(grey.mean())) < 0.01


def test_dynamic_test_set_is_binarized_once_with_the_documented_cpu_seed(digits, monkeypatch):
    from vaelib.train import TEST_BINARIZE_SEED
    recorded = []
    original = Trainer._evaluate

    def spy(self, x_test, *args):
        recorded.append(x_test.clone())
        return original(self, x_test, *args)

    monkeypatch.setattr(Trainer, "_evaluate", spy)
    test = digits[1][0]
    fit(small_vae(), digits[0], test=test, epochs=2, binarize="dynamic", seed=3, verbose=False)
    expected = torch.bernoulli(test.reshape(len(test), -1), generator=torch.Generator().manual_seed(TEST_BINARIZE_SEED))
    assert len(recorded) == 2 and all(torch.equal(x.cpu(), expected) for x in recorded)


def test_binarize_argument_and_static(digits, monkeypatch):
    seen = _epoch_inputs(monkeypatch)
    fit(small_vae(), digits[0], epochs=2, binarize="dynamic", verbose=False)
    fit(small_vae(), digits[0], epochs=2, binarize="static", verbose=False)
    assert not torch.equal(seen[0], seen[1])
    expected = (digits[0][0].reshape(-1, 64) > 0.5).float()
    assert torch.equal(seen[2], expected) and torch.equal(seen[3], expected)


def test_verbose_false_is_silent_and_verbose_shows_progress(digits, capsys):
    fit(small_vae(), digits[0], epochs=1, verbose=False)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    fit(small_vae(), digits[0], epochs=1, verbose=True)
    assert "loss=" in capsys.readouterr().err


def test_checkpoint_every_epoch(digits, tmp_path):
    from vaelib.checkpoint import load_checkpoint

    path = tmp_path / "run.pt"
    model = small_vae()
    h = fit(model, digits[0], epochs=2, verbose=False, checkpoint=path)
    loaded, opt_state, history = load_checkpoint(path)
    assert history == h and opt_state is not None
    assert_same_weights(weights(model), weights(loaded))


def test_trainer_fit_twice_continues(digits):
    trainer = Trainer(small_vae(), verbose=False)
    trainer.fit(digits[0], epochs=2)
    h = trainer.fit(digits[0], epochs=2)
    assert len(h.train_loss) == 4 and h.train_loss[3] < h.train_loss[0]


def test_pick_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == torch.device("cuda")


def test_denormals_are_flushed_in_every_thread_while_fit_trains_and_only_then(digits, monkeypatch):
    """Adam's running means decay into denormal numbers, which x86 CPUs compute with slowly: fit flushes them to zero
    in the main thread and in torch's worker threads while it trains, and restores the previous setting after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(2, threads))            # so that the product below is split across threads
    tiny = torch.full((1 << 20,), 1e-39)              # float32 denormals
    survivors = lambda: int((tiny * 1.5 != 0).sum())  # noqa: E731
    seen = []
    original = Trainer._train_epoch

    def spy(self, *args, **kwargs):
        seen.append(survivors())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_train_epoch", spy)
    try:
        assert survivors() == tiny.numel()
        fit(small_vae(), digits[0], epochs=2, verbose=False)
        assert seen == [0, 0]                         # no thread kept a denormal
        assert survivors() == tiny.numel()            # off again, as before
        _set_flush_denormal(True)                     # flushing already on: fit leaves it on
        fit(small_vae(), digits[0], epochs=1, verbose=False)
        assert survivors() == 0
    finally:
        _set_flush_denormal(False)
        torch.set_num_threads(threads)


def test_history_dict_round_trip():
    h = History(train_loss=[3.0, 2.0], test_loss=[3.5], epoch_seconds=[0.1, 0.1], train_recon=[2.5, 1.5],
                train_kl=[0.5, 0.5], beta=[0.5, 1.0])
    assert History.from_dict(h.to_dict()) == h
    with pytest.raises(ValueError, match="not a History"):
        History.from_dict({"train_loss": [1.0], "accuracy": [0.5]})


# ------------------------------------------------------------------ KL warm-up (Bowman et al., 2016)


def _hand_gradient(model, x, seed, objective):
    """Autograd of a hand-written objective of one batch, with the reparameterisation noise the trainer draws after
    ``torch.manual_seed(seed)``: the terms come from torch.distributions, not from vaelib's losses."""
    torch.manual_seed(seed)
    mu, logvar = model.encode(x)
    sigma = torch.exp(0.5 * logvar)
    z = mu + sigma * torch.randn_like(mu)
    # validate_args=False: the digits are grey values, for which log_prob is the cross-entropy x log p + (1-x) log(1-p)
    recon = -torch.distributions.Bernoulli(logits=model.decode(z), validate_args=False).log_prob(x).sum(-1)  # (B,)
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(mu, sigma),
                                           torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu)))
    grads = torch.autograd.grad(objective(recon, kl), list(model.parameters()))
    return dict(zip([n for n, _ in model.named_parameters()], grads))


def _trainer_gradient(trainer, x, seed, **step_kwargs):
    """The gradient that one training step of ``trainer`` computes (an SGD with lr 0 leaves the weights alone)."""
    trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=0.0)
    torch.manual_seed(seed)
    trainer._step(x, **step_kwargs)
    return {n: p.grad.clone() for n, p in trainer.model.named_parameters()}


def test_one_step_s_gradient_weighs_the_kl_by_the_given_weight(digits):
    x = digits[0][0][:64].reshape(64, -1)
    model = small_vae()
    trainer = Trainer(model, device="cpu", beta=2.0, kl_warmup=3, verbose=False)
    for weight in (0.0, 0.3, 2.0):
        got = _trainer_gradient(trainer, x, 5, kl_weight=weight)
        expected = _hand_gradient(model, x, 5, lambda recon, kl: (recon + weight * kl.sum(-1)).mean())
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-6, msg=name)


def test_warm_up_weight_rises_linearly_step_by_step():
    trainer = Trainer(small_vae(), device="cpu", beta=2.0, kl_warmup=1.5, verbose=False)
    steps_per_epoch = 10                                  # warm-up over 15 steps
    for step, weight in [(1, 2 / 15), (7, 14 / 15), (15, 2.0), (16, 2.0), (1000, 2.0)]:
        assert trainer.kl_weight(step, steps_per_epoch) == pytest.approx(weight, rel=1e-12)
    assert Trainer(small_vae(), device="cpu", beta=0.7, verbose=False).kl_weight(1, 10) == 0.7


def _step_weights(monkeypatch, sums=None):
    """Record the KL weight of every optimiser step (and, in ``sums``, the batch sums of (objective, recon, kl))."""
    seen = []
    original = Trainer._step

    def spy(self, xb, kl_weight=None, **kwargs):
        seen.append(kl_weight)
        out = original(self, xb, kl_weight, **kwargs)
        if sums is not None:
            sums.append(out.tolist())
        return out

    monkeypatch.setattr(Trainer, "_step", spy)
    return seen


def test_warm_up_schedule_in_training_and_history(digits, monkeypatch):
    sums = []
    seen = _step_weights(monkeypatch, sums)
    train, test = digits
    model = small_vae()
    h = fit(model, train, test=test, epochs=3, beta=1.0, kl_warmup=2, verbose=False)
    w = STEPS_PER_EPOCH * 2
    assert seen == pytest.approx([min(1.0, s / w) for s in range(1, 3 * STEPS_PER_EPOCH + 1)], rel=1e-12)
    assert h.beta == pytest.approx([0.5, 1.0, 1.0], rel=1e-12)
    # Every step optimised recon + weight * KL; the history records the true terms and the objective's epoch mean.
    sums = np.array(sums)
    np.testing.assert_allclose(sums[:, 0], sums[:, 1] + np.array(seen) * sums[:, 2], rtol=1e-5)
    per_epoch = sums.reshape(3, STEPS_PER_EPOCH, 3).sum(1) / len(train[0])
    np.testing.assert_allclose(h.train_loss, per_epoch[:, 0], rtol=1e-5)
    np.testing.assert_allclose(h.train_recon, per_epoch[:, 1], rtol=1e-5)
    np.testing.assert_allclose(h.train_kl, per_epoch[:, 2], rtol=1e-5)
    assert h.train_loss[0] < h.train_recon[0] + h.train_kl[0]
    # The test loss is the negative ELBO (target beta = 1, no warm-up): an independent 20-sample estimate.
    after = -losses.elbo(model, test[0], samples=20).mean().item()
    assert abs(h.test_loss[-1] - after) < 0.5


def test_warm_up_changes_the_run_and_zero_warm_up_does_not(digits):
    reference = small_vae()
    h0 = fit(reference, digits[0], epochs=2, verbose=False)
    model = small_vae()
    h = fit(model, digits[0], epochs=2, kl_warmup=0, verbose=False)
    assert h.train_loss == h0.train_loss and h.beta == h0.beta == [1.0, 1.0]
    assert_same_weights(weights(reference), weights(model))
    warm = fit(small_vae(), digits[0], epochs=2, kl_warmup=4, verbose=False)
    assert warm.train_loss != h0.train_loss and warm.beta == pytest.approx([0.25, 0.5])


def test_resumed_warm_up_continues_the_schedule(digits, tmp_path, monkeypatch):
    train, test = digits
    whole = small_vae()
    expected = fit(whole, train, epochs=4, test=test, kl_warmup=2.5, verbose=False)

    path = tmp_path / "run.pt"
    trainer = InterruptAt(small_vae(), verbose=False, checkpoint=path, kl_warmup=2.5,
                          interrupt_at=2 * STEPS_PER_EPOCH + 4)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(train, epochs=4, test=test)
    seen = _step_weights(monkeypatch)
    model = small_vae()
    h = fit(model, train, epochs=4, test=test, kl_warmup=2.5, checkpoint=path, resume=True, verbose=False)
    w = 2.5 * STEPS_PER_EPOCH                              # the resumed steps are the run's 25th to 48th
    assert seen == pytest.approx([min(1.0, s / w) for s in range(2 * STEPS_PER_EPOCH + 1, 4 * STEPS_PER_EPOCH + 1)])
    assert_same_weights(weights(whole), weights(model))
    for name in ("train_loss", "test_loss", "train_recon", "train_kl", "beta"):
        assert getattr(h, name) == getattr(expected, name), name
    # The same with two fit calls on one Trainer.
    monkeypatch.undo()
    split = Trainer(small_vae(), kl_warmup=2.5, verbose=False)
    split.fit(train, epochs=1, test=test)
    h2 = split.fit(train, epochs=3, test=test)
    assert h2.beta == expected.beta and h2.train_loss == expected.train_loss
    assert_same_weights(weights(whole), weights(split.model))


@pytest.mark.parametrize("kwargs, message", [
    (dict(kl_warmup=-1), "kl_warmup"), (dict(kl_warmup=float("nan")), "kl_warmup"), (dict(kl_warmup="2"), "kl_warmup"),
])
def test_bad_warm_up_refused(digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit(small_vae(), digits[0], epochs=1, verbose=False, **kwargs)


def test_warm_up_needs_a_vae(digits):
    with pytest.raises(ValueError, match="kl_warmup changes a VAE's KL term; a Autoencoder has none"):
        fit(small_vae(cls=vaelib.Autoencoder), digits[0], epochs=1, kl_warmup=1, verbose=False)


# ------------------------------------------------------------------ free bits (Kingma et al., 2016)


def test_one_step_s_gradient_with_free_bits_is_that_of_the_hand_written_objective(digits):
    x = digits[0][0][:64].reshape(64, -1)
    model = small_vae()
    with torch.no_grad():
        model.to_mu.bias.copy_(torch.tensor([0.0, 0.5, 1.0, 2.0]))          # dimensions with different KLs
        _, kl = losses.elbo_terms(model, x, per_dim=True)
    floor = kl.mean(0).median().item() + 1e-3                               # some dimensions below, some above
    below = kl.mean(0) < floor
    assert 0 < int(below.sum()) < 4
    trainer = Trainer(model, device="cpu", beta=1.5, free_bits=floor, verbose=False)
    for weight in (0.4, 1.5):
        got = _trainer_gradient(trainer, x, 11, kl_weight=weight)
        expected = _hand_gradient(model, x, 11, lambda recon, kl: recon.mean()
                                  + weight * torch.maximum(kl.mean(0), torch.tensor(floor)).sum())
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-6, msg=name)
    # Dimensions below the floor get no gradient from the KL: with the decoder unable to see z (its first
    # layer's weights zeroed), the only gradient that reaches mu_j is the KL's, which is 0 for those dimensions.
    with torch.no_grad():
        model.decoder[0].weight.zero_()
    got = _trainer_gradient(trainer, x, 11, kl_weight=1.0)
    mu_grad = got["to_mu.bias"]
    assert bool((mu_grad[below] == 0).all()) and bool((mu_grad[~below] != 0).all())


def test_free_bits_above_every_dimension_s_kl_make_the_objective_recon_plus_the_floor(digits):
    train, test = digits
    model = small_vae()
    h = fit(model, train, test=test, epochs=2, beta=1.0, free_bits=3.0, verbose=False)
    # Four dimensions, each with a batch-mean KL under 3 nats: the objective is recon + 4 * 3 nats, exactly.
    assert max(h.train_kl) < 3.0
    np.testing.assert_allclose(h.train_loss, np.add(h.train_recon, 12.0), rtol=1e-6)
    # The recorded terms are the true ones, the test loss the negative ELBO without a floor.
    after = -losses.elbo(model, test[0], samples=20).mean().item()
    assert abs(h.test_loss[-1] - after) < 0.5
    assert h.beta == [1.0, 1.0]


def test_free_bits_with_warm_up_weighs_the_floored_kl(digits, monkeypatch):
    sums = []
    seen = _step_weights(monkeypatch, sums)
    fit(small_vae(), digits[0], epochs=1, kl_warmup=2, free_bits=3.0, verbose=False)
    sums = np.array(sums)
    batch = np.array([128] * (STEPS_PER_EPOCH - 1) + [1500 - 128 * (STEPS_PER_EPOCH - 1)])
    np.testing.assert_allclose(sums[:, 0], sums[:, 1] + np.array(seen) * batch * 12.0, rtol=1e-5)


def test_free_bits_refused_when_negative_or_without_a_kl(digits):
    with pytest.raises(ValueError, match="free_bits"):
        fit(small_vae(), digits[0], epochs=1, free_bits=-0.5, verbose=False)
    with pytest.raises(ValueError, match="free_bits changes a VAE's KL term"):
        fit(small_vae(cls=vaelib.Autoencoder), digits[0], epochs=1, free_bits=0.5, verbose=False)


# ------------------------------------------------------------------ denoising (Vincent et al., 2008)


def _denoising_steps(monkeypatch):
    """Record every step's input and target, and check the step's reconstruction sum against torch.distributions."""
    seen = []
    original = Trainer._step

    def spy(self, xb, kl_weight=None, target=None, **kwargs):
        if not self.vae:
            with torch.no_grad():
                logits = self.model(xb)
                expected = -torch.distributions.Bernoulli(logits=logits, validate_args=False).log_prob(target).sum()
        out = original(self, xb, kl_weight, target=target, **kwargs)
        if not self.vae:
            assert out[1].item() == pytest.approx(expected.item(), rel=1e-5)
        seen.append((xb.clone(), None if target is None else target.clone()))
        return out

    monkeypatch.setattr(Trainer, "_step", spy)
    return seen


@pytest.mark.parametrize("cls", [vaelib.Autoencoder, vaelib.VAE])
def test_denoising_feeds_corrupted_batches_and_scores_the_clean_ones(digits, monkeypatch, cls):
    from vaelib.data import masking_noise

    seen = _denoising_steps(monkeypatch)
    train, test = digits
    model = small_vae(cls=cls)
    h = fit(model, train, test=test, epochs=2, corrupt=masking_noise(0.5), verbose=False)
    assert len(seen) == 2 * STEPS_PER_EPOCH
    clean = train[0].reshape(-1, 64)
    rows = {tuple(r.tolist()) for r in clean}
    zeroed = []
    for xb, target in seen:
        assert all(tuple(r.tolist()) in rows for r in target)         # the targets are clean training images
        assert bool(((xb == target) | (xb == 0)).all())                # the inputs are those images, masked
        on = target > 0
        zeroed.append(((xb == 0) & on).sum().item() / on.sum().item())
    assert abs(np.mean(zeroed) - 0.5) < 0.02
    if cls is vaelib.Autoencoder:                                      # deterministic: the test loss is exact
        with torch.no_grad():
            clean_loss = losses.reconstruction_loss(model, test[0]).mean().item()
        assert h.test_loss[-1] == pytest.approx(clean_loss, rel=1e-5)  # measured on clean inputs
    else:
        assert abs(h.test_loss[-1] + losses.elbo(model, test[0], samples=20).mean().item()) < 0.5


def test_denoising_runs_are_reproducible_and_differ_from_plain_ones(digits):
    from vaelib.data import gaussian_noise

    runs = []
    for corrupt in (gaussian_noise(0.3), gaussian_noise(0.3), None):
        model = small_vae(cls=vaelib.Autoencoder)
        h = fit(model, digits[0], epochs=2, seed=3, corrupt=corrupt, verbose=False)
        runs.append((h.train_loss, weights(model)))
    assert runs[0][0] == runs[1][0]
    assert_same_weights(runs[0][1], runs[1][1])
    assert runs[0][0] != runs[2][0]


def test_a_denoising_autoencoder_denoises_better_than_a_plain_one(digits):
    from vaelib.data import masking_noise

    train, test = digits
    corrupt = masking_noise(0.5)
    scores = {}
    x = test[0].reshape(-1, 64)
    for name, option in (("plain", None), ("denoising", corrupt)):
        torch.manual_seed(0)
        model = vaelib.Autoencoder(64, hidden=(32,), latent_dim=16)
        fit(model, train, epochs=15, lr=3e-3, corrupt=option, verbose=False)
        torch.manual_seed(0)
        with torch.no_grad():     # reconstruct the clean test images from masked copies
            scores[name] = losses.reconstruction_loss(model, corrupt(x), target=x).mean().item()
    # About 1 nat per image better (24.1 -> 23.2 nats when written; grey digits keep the BCE far from 0).
    assert scores["denoising"] < scores["plain"] - 0.5, scores


@pytest.mark.parametrize("corrupt, error, message", [
    ("noise", TypeError, "corrupt must be a function"),
    (lambda x: x[:, :10], ValueError, r"corrupt must return a float tensor of its input's shape \(128, 64\)"),
    (lambda x: (x > 0.5), ValueError, "torch.bool"),
    (lambda x: x.numpy(), ValueError, "ndarray"),
])
def test_a_bad_corruption_is_named(digits, corrupt, error, message):
    with pytest.raises(error, match=message):
        fit(small_vae(), digits[0], epochs=1, corrupt=corrupt, verbose=False)


# ------------------------------------------------------------------ the conditional VAE


def small_cvae(seed=0):
    torch.manual_seed(seed)
    return vaelib.CVAE(64, 10, hidden=(64,), latent_dim=2)


def test_cvae_batches_carry_their_own_labels(digits, monkeypatch):
    train, test = digits
    label_of = {}
    for image, label in zip(train[0].reshape(-1, 64), train[1]):
        label_of.setdefault(tuple(image.tolist()), set()).add(int(label))
    seen = []
    original = Trainer._step

    def spy(self, xb, kl_weight=None, target=None, labels=None):
        seen.append((xb.clone(), labels.clone()))
        return original(self, xb, kl_weight, target=target, labels=labels)

    monkeypatch.setattr(Trainer, "_step", spy)
    fit(small_cvae(), train, test=test, epochs=2, verbose=False)
    assert len(seen) == 2 * STEPS_PER_EPOCH
    for xb, labels in seen:
        assert labels.shape == (len(xb), 10) and bool((labels.sum(1) == 1).all())    # one-hot rows
        for image, row in zip(xb, labels):
            assert int(row.argmax()) in label_of[tuple(image.tolist())]               # the image's own label
    assert not torch.equal(seen[0][1], seen[STEPS_PER_EPOCH][1])                      # reshuffled each epoch


def test_a_trained_cvae_decodes_class_dependent_images(digits):
    """After training, the mean of the decoded images of class c (z from the prior) is closer to the mean training
    image of class c than to that of any other class, for every class."""
    train, test = digits
    model = small_cvae()
    h = fit(model, train, test=test, epochs=10, lr=3e-3, verbose=False)
    # The test loss is the negative conditional ELBO: an independent 20-sample estimate.
    bound = losses.elbo(model, test[0], samples=20, y=test[1]).mean().item()
    assert abs(h.test_loss[-1] + bound) < 0.5
    class_means = torch.stack([train[0][train[1] == c].mean(0) for c in range(10)]).reshape(10, -1)
    generator = torch.Generator().manual_seed(1)
    decoded = torch.stack([model.sample(200, c, generator=generator).mean(0) for c in range(10)]).reshape(10, -1)
    distance = torch.cdist(decoded, class_means)                                      # (decoded class, class)
    others = distance.masked_fill(torch.eye(10, dtype=torch.bool), float("inf")).min(1).values
    assert bool((distance.diag() < 0.8 * others).all()), distance   # own class at most 0.48 of the next when written


@pytest.mark.parametrize("train, test, message", [
    ("images", None, r"train: a CVAE is conditional, so train must be an \(images, labels\) pair"),
    ("pair", "images", r"test: a CVAE is conditional, so test must be an \(images, labels\) pair"),
    ("short labels", None, r"train labels: the labels y must be class indices.*\(B = 1500\); got torch.int64 of shape"),
    ("labels out of range", None, r"train labels: class labels must lie in \[0, 10\); got labels in \[0, 10\]"),
])
def test_cvae_data_without_good_labels_are_refused_before_training(digits, monkeypatch, train, test, message):
    images, labels = digits[0]
    forms = {"images": images, "pair": digits[0], "short labels": (images, labels[:-1]),
             "labels out of range": (images, labels.clamp(max=9) + (labels == 9).long()), None: None}
    monkeypatch.setattr(Trainer, "_train_epoch", lambda *args, **kw: pytest.fail("trained before refusing"))
    with pytest.raises(ValueError, match=message):
        fit(small_cvae(), forms[train], test=forms[test] if test != "images" else digits[1][0], epochs=1,
            verbose=False)


def test_cvae_resumes_and_evaluates_with_labels(digits, tmp_path):
    train, test = digits
    whole = small_cvae()
    expected = fit(whole, train, test=test, epochs=3, verbose=False)
    path = tmp_path / "cvae.pt"
    first = fit(small_cvae(), train, test=test, epochs=1, checkpoint=path, verbose=False)
    assert len(first.train_loss) == 1
    model = small_cvae()
    h = fit(model, train, test=test, epochs=3, checkpoint=path, resume=True, verbose=False)
    assert h.train_loss == expected.train_loss and h.test_loss == expected.test_loss
    assert_same_weights(weights(whole), weights(model))
    assert Trainer(model, verbose=False).evaluate(test) == pytest.approx(h.test_loss[-1], rel=1e-6)
    with pytest.raises(ValueError, match="must be an \\(images, labels\\) pair"):
        Trainer(model, verbose=False).evaluate(test[0])
