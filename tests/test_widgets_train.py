"""The training explorer: a VAE trained by Adam in the reader's browser (vaelib/js/train.js).

(1) Under Node.js, the JavaScript's own loss and gradients, for weights built here, a binary batch and fixed noise
eps, agree with ``vaelib.elbo`` and PyTorch's autograd (float64 to 1e-9, float32 autograd to float32 precision), its
Adam step with ``torch.optim.Adam``, its encoder and decoder with ``model.encode`` and ``model.decode``, and its
separation score with NumPy; a short training run under Node lowers the loss. (2) In Python: the images and labels
embedded in the page, the 2 MB limit, and clear errors for bad input. The browser test (tests/browser/test_train.py)
presses Train on the built page.
"""
from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

import vaelib
from vaelib.data import STATIC_THRESHOLD
from vaelib.widgets import TrainingExplorer

from widget_js import check_conventions, needs_node, run_node

TORCH_NAMES = ["body.0.weight", "body.0.bias", "to_mu.weight", "to_mu.bias", "to_logvar.weight", "to_logvar.bias",
               "decoder.0.weight", "decoder.0.bias", "decoder.2.weight", "decoder.2.bias"]


def _model(d=64, hidden=16, seed=0, scale=2.0):
    """A VAE with larger weights than the default init (so ReLUs switch and logits reach the sigmoid's tails)."""
    torch.manual_seed(seed)
    model = vaelib.VAE(d, hidden=(hidden,), latent_dim=2)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model


def _batch(n, d, seed=1):
    g = np.random.default_rng(seed)
    x = (g.random((n, d)) < g.uniform(0.1, 0.5, size=(n, 1))).astype(np.float32)
    eps = g.standard_normal((n, 2)).astype(np.float32)
    return x, eps


def _torch_loss_and_grads(model, x, eps, beta, dtype=torch.float64):
    """-vaelib.elbo(model, x, beta).mean() with the sample z = mu + exp(logvar / 2) * eps, and its autograd gradients."""
    model = model.to(dtype)
    model.zero_grad()
    e = torch.as_tensor(eps, dtype=dtype)
    model.reparameterize = lambda mu, logvar: mu + torch.exp(0.5 * logvar) * e   # fixed noise instead of randn_like
    xt = torch.as_tensor(x, dtype=dtype)
    loss = -vaelib.elbo(model, xt, beta=beta).mean()
    loss.backward()
    recon, kl = (-t.mean() if i == 0 else t.mean() for i, t in enumerate(vaelib.elbo_terms(model, xt)))
    del model.reparameterize
    grads = {name: p.grad.detach().double().numpy().copy() for name, p in model.named_parameters()}
    return float(loss.detach()), float(recon.detach()), float(kl.detach()), grads


def _params(model):
    return {name: p.detach().float().reshape(-1).tolist() for name, p in model.named_parameters()}


JS_LOSS = """
const net = m.createNet(s.D, s.H, 2);
m.setTorchParams(net, s.params);
const data = m.imagesFromRows(s.x);
const idx = s.x.map((_, i) => i);
const grads = m.zerosLike(net);
const out = m.lossAndGrad(net, data, idx, s.eps.flat(), s.beta, grads);
console.log(JSON.stringify({ out, grads: m.toTorchLayout(net, grads), params: m.toTorchLayout(net, net.p) }));
"""


@needs_node
@pytest.mark.parametrize("d, hidden, beta", [(64, 16, 1.0), (64, 16, 7.5), (784, 32, 0.3)])
def test_js_loss_and_gradients_match_autograd(tmp_path, d, hidden, beta):
    model = _model(d, hidden)
    x, eps = _batch(12, d)
    payload = dict(D=d, H=hidden, beta=beta, params=_params(model), x=x.astype(int).tolist(), eps=eps.tolist())
    js = run_node(tmp_path, "train", JS_LOSS, payload)
    for name in TORCH_NAMES:   # the weights went in and came out unchanged (W1T is stored transposed)
        np.testing.assert_array_equal(np.float32(js["params"][name]), model.state_dict()[name].reshape(-1).numpy())
    loss64, recon64, kl64, g64 = _torch_loss_and_grads(_model(d, hidden), x, eps, beta, torch.float64)
    loss32, recon32, kl32, g32 = _torch_loss_and_grads(_model(d, hidden), x, eps, beta, torch.float32)
    out = js["out"]
    assert out["loss"] == pytest.approx(loss64, rel=1e-12)
    assert out["recon"] == pytest.approx(recon64, rel=1e-12) and out["kl"] == pytest.approx(kl64, rel=1e-12)
    assert out["negElbo"] == pytest.approx(recon64 + kl64, rel=1e-12)
    assert out["loss"] == pytest.approx(loss32, rel=2e-6)
    assert 0.1 < kl64 and 20 < recon64   # a batch that exercises both terms
    for name in TORCH_NAMES:
        got, want64, want32 = np.array(js["grads"][name]), g64[name].reshape(-1), g32[name].reshape(-1)
        scale = np.abs(want64).max()
        assert scale > 0, name
        np.testing.assert_allclose(got, want64, rtol=1e-9, atol=1e-12 * scale, err_msg=name)
        np.testing.assert_allclose(got, want32, rtol=1e-3, atol=2e-6 * scale, err_msg=name)


@needs_node
def test_js_adam_matches_torch_optim_adam(tmp_path):
    model = _model(64, 16)
    x, eps = _batch(8, 64)
    lr, steps = 3e-3, 4
    body = """
const net = m.createNet(s.D, s.H, 2);
m.setTorchParams(net, s.params);
const data = m.imagesFromRows(s.x), idx = s.x.map((_, i) => i), adam = m.makeAdam(net);
for (let t = 0; t < s.steps; t++) {
  const grads = m.zerosLike(net);
  m.lossAndGrad(net, data, idx, s.eps.flat(), 1.0, grads);
  m.adamStep(net, grads, adam, s.lr);
}
console.log(JSON.stringify(m.toTorchLayout(net, net.p)));
"""
    js = run_node(tmp_path, "train", body, dict(D=64, H=16, params=_params(model), x=x.astype(int).tolist(),
                                                 eps=eps.tolist(), lr=lr, steps=steps))
    ref = _model(64, 16)
    opt = torch.optim.Adam(ref.parameters(), lr=lr)
    e = torch.as_tensor(eps)
    ref.reparameterize = lambda mu, logvar: mu + torch.exp(0.5 * logvar) * e
    for _ in range(steps):
        opt.zero_grad()
        (-vaelib.elbo(ref, torch.as_tensor(x)).mean()).backward()
        opt.step()
    for name, p in ref.named_parameters():
        start = model.state_dict()[name].reshape(-1).numpy()
        want, got = p.detach().reshape(-1).numpy(), np.array(js[name], dtype=np.float32)
        assert np.abs(want - start).max() > 0.5 * steps * lr   # Adam moved every parameter by about lr per step
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=name)


@needs_node
def test_js_encoder_decoder_and_separation_match_python(tmp_path):
    model = _model(64, 16)
    x, _ = _batch(30, 64, seed=3)
    labels = np.arange(30) % 3
    z = np.random.default_rng(4).standard_normal((5, 2))
    body = """
const net = m.createNet(s.D, s.H, 2);
m.setTorchParams(net, s.params);
const data = m.imagesFromRows(s.x), idx = s.x.map((_, i) => i);
const vars = new Float32Array(2 * idx.length), mu = m.latentMeans(net, data, idx, vars);
console.log(JSON.stringify({ mu: Array.from(mu), vars: Array.from(vars),
                             dec: Array.from(m.decodeMeans(net, Float64Array.from(s.z.flat()))),
                             sep: m.separation(mu, s.labels), sepCodes: m.separation(mu, s.labels, vars),
                             sepPoints: m.separation(s.points.flat(), s.labels) }));
"""
    points = np.random.default_rng(5).standard_normal((30, 2)) + labels[:, None] * [1.5, -0.5]
    js = run_node(tmp_path, "train", body, dict(D=64, H=16, params=_params(model), x=x.astype(int).tolist(),
                                                 z=z.tolist(), labels=labels.tolist(), points=points.tolist()))
    with torch.no_grad():
        mu, logvar = model.double().encode(torch.as_tensor(x, dtype=torch.float64))
        dec = torch.sigmoid(model.decode(torch.as_tensor(z))).numpy()
    js_mu, js_var = np.array(js["mu"]).reshape(-1, 2), np.array(js["vars"]).reshape(-1, 2)
    np.testing.assert_allclose(js_mu, mu.numpy(), rtol=0, atol=1e-6)  # returned as float32
    np.testing.assert_allclose(js_var, logvar.exp().numpy(), rtol=1e-6, atol=0)
    np.testing.assert_allclose(np.array(js["dec"]).reshape(5, 64), dec, rtol=0, atol=1e-12)

    def sums_of_squares(p, y):   # between-class and within-class sums of squares
        g = p.mean(0)
        between = sum((y == c).sum() * ((p[y == c].mean(0) - g) ** 2).sum() for c in np.unique(y))
        return between, sum(((p[y == c] - p[y == c].mean(0)) ** 2).sum() for c in np.unique(y))

    def separation(p, y):
        between, within = sums_of_squares(p, y)
        return between / within

    assert js["sepPoints"] == pytest.approx(separation(points, labels), rel=1e-12)
    assert js["sep"] == pytest.approx(separation(js_mu, labels), rel=1e-9)
    # With the posterior variances: the between/within ratio of codes z ~ q(z|x). By the law of total variance the
    # codes' within-class spread is that of the means plus the posterior variances; checked by Monte Carlo too.
    between, within = sums_of_squares(js_mu, labels)
    assert js["sepCodes"] == pytest.approx(between / (within + js_var.sum()), rel=1e-9) and js["sepCodes"] < js["sep"]
    reps = 40_000   # the Monte Carlo between-class term's standard error is about 1.5% here
    codes = js_mu[None] + np.sqrt(js_var)[None] * np.random.default_rng(6).standard_normal((reps, 30, 2))
    assert js["sepCodes"] == pytest.approx(separation(codes.reshape(-1, 2), np.tile(labels, reps)), rel=0.06)


@needs_node
def test_js_initialisation_is_torch_linears(tmp_path):
    body = """
const net = m.createNet(784, 128, 2, m.makeRandom(7));
const out = {};
for (const [k, a] of Object.entries(net.p)) out[k] = [a.length, Math.max(...a.map(Math.abs)), Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length)];
console.log(JSON.stringify(out));
"""
    js = run_node(tmp_path, "train", body, {})
    fan_in = dict(W1T=784, b1=784, Wmu=128, bmu=128, Wlv=128, blv=128, W3=2, b3=2, W4=128, b4=128)
    torch_model = vaelib.VAE(784, hidden=(128,), latent_dim=2)
    sizes = {k: torch_model.state_dict()[v].numel() for k, v in zip(fan_in, TORCH_NAMES)}
    for name, (size, largest, rms) in js.items():
        bound = 1 / np.sqrt(fan_in[name])        # torch.nn.Linear: weights and biases uniform in +-1/sqrt(fan_in)
        assert size == sizes[name] and largest <= bound
        if size >= 128:
            assert rms == pytest.approx(bound / np.sqrt(3), rel=0.1), name


@needs_node
def test_js_training_run_lowers_the_loss_and_separates_the_digits(tmp_path):
    """Under Node: 150 Adam steps on scikit-learn's 8x8 digits, as the widget runs them (trainStep)."""
    images, labels = vaelib.load_dataset("digits")
    w = TrainingExplorer(images, labels, n_images=1000, hidden=64, batch_size=32, n_plot=500)
    body = """
const data = m.unpackImages(m.bytesFromBase64(s.images), s.n, s.d);
const labels = Array.from(m.bytesFromBase64(s.labels)).slice(0, 500), plot = labels.map((_, i) => i);
const t = m.makeTrainer(data, { hidden: 64, batchSize: 32, seed: 0 });
const sep0 = m.separation(m.latentMeans(t.net, data, plot), labels);
const first = [];
for (let k = 0; k < 150; k++) { const o = m.trainStep(t, 1.0, 3e-3); if (k < 10) first.push(o.negElbo); }
const out = { first: first.reduce((a, b) => a + b) / 10, last: m.recentLoss(t), sep0,
  sep: m.separation(m.latentMeans(t.net, data, plot), labels), steps: t.steps, images: t.images,
  history: t.history.length };
// The history stays evenly spaced when it is thinned: run on (cheaply, at a tiny scale) past 400 points.
const small = m.makeTrainer(m.unpackImages(m.bytesFromBase64(s.images), 40, s.d), { hidden: 4, batchSize: 8, seed: 1 });
for (let k = 0; k < 10 * 401 + 20 * 10; k++) m.trainStep(small, 1.0, 1e-3);
out.thinned = { n: small.history.length, every: small.every, steps: small.history.map((h) => h.step) };
console.log(JSON.stringify(out));
"""
    js = run_node(tmp_path, "train", body, dict(images=w.images, labels=w.labels, n=w.n_images, d=64))
    assert js["steps"] == 150 and js["images"] == 150 * 32 and js["history"] == 15
    thinned = js["thinned"]   # 401 points every 10 steps, thinned to 200 every 20, then 10 more every 20
    assert thinned["every"] == 20 and thinned["n"] == 210 and thinned["steps"] == list(range(20, 4201, 20))
    assert js["last"]["negElbo"] < js["first"] - 5          # nats per image
    assert js["sep"] > 2 * js["sep0"] and js["sep"] > 1.0


# --- Python side ---------------------------------------------------------------------------------------------

def _images(n=200, h=28, w=28, seed=0):
    g = np.random.default_rng(seed)
    return torch.as_tensor(g.random((n, 1, h, w)), dtype=torch.float32), torch.as_tensor(g.integers(0, 10, n))


def test_embeds_a_seeded_subset_binarised_as_load_dataset_static():
    x, y = _images(300)
    w = TrainingExplorer(x, y, n_images=120, seed=3)
    keep = np.random.default_rng(3).permutation(300)[:120]
    np.testing.assert_array_equal(w.binary_images(), (x[keep, 0] > STATIC_THRESHOLD).numpy().astype(np.uint8))
    np.testing.assert_array_equal(w.image_labels(), y[keep].numpy())
    assert (w.n_images, w.height, w.width) == (120, 28, 28)
    assert len(base64.b64decode(w.images)) == 120 * 98       # one bit per pixel: 784 / 8 bytes per image
    again = TrainingExplorer(x.numpy()[:, 0], y.numpy(), n_images=120, seed=3)   # (N, H, W) arrays work too
    assert again.images == w.images and again.labels == w.labels
    assert TrainingExplorer(x, y, n_images=120, seed=4).images != w.images


def test_defaults_and_slider_state():
    x, y = _images(6000, 8, 8)
    w = TrainingExplorer(x, y, beta=10.0, lr=1e-3, label_names=[f"digit {k}" for k in range(10)])
    assert w.n_images == 5000 and w.hidden == 128 and w.batch_size == 32 and w.n_plot == 1000 and w.n_show == 8
    assert w.beta_log10 == 1.0 and w.lr_log10 == -3.0 and w.label_names[2] == "digit 2"
    assert TrainingExplorer(x, y).lr_log10 == pytest.approx(np.log10(3e-3), abs=1e-4)


def test_the_default_mnist_widget_adds_less_than_2_mb():
    x, y = _images(5000)
    w = TrainingExplorer(x, y)
    assert w.embedded_bytes() == len(w.images) + len(w.labels) < 2_000_000
    assert w.embedded_bytes() == pytest.approx(5000 * (98 + 1) * 4 / 3, rel=0.001)   # base64: 4 chars per 3 bytes


def test_data_size_limit():
    x, y = _images(3000, 56, 56)   # 392 bytes per image
    with pytest.raises(ValueError, match=r"more than max_bytes = 2,000,000: use n_images <= 3808|would add"):
        TrainingExplorer(x.repeat(2, 1, 1, 1), y.repeat(2), n_images=6000)
    with pytest.raises(ValueError, match=r"would add [\d,]+ bytes to the page, more than max_bytes = 100,000"):
        TrainingExplorer(x, y, n_images=1000, max_bytes=100_000)
    ok = TrainingExplorer(x, y, n_images=190, max_bytes=100_000)
    assert ok.embedded_bytes() <= 100_000


@pytest.mark.parametrize("kwargs, match", [
    (dict(images=torch.rand(10, 3, 8, 8)), r"shape \(N, 1, H, W\) or \(N, H, W\)"),
    (dict(images=torch.rand(10, 64)), r"shape \(N, 1, H, W\)"),
    (dict(images=torch.rand(10, 8, 8) * 2), r"finite numbers in \[0, 1\]"),
    (dict(images=torch.full((10, 8, 8), float("nan"))), r"finite numbers in \[0, 1\]"),
    (dict(labels=torch.zeros(9, dtype=torch.long)), r"labels must be 10 integers"),
    (dict(labels=torch.zeros(10)), r"labels must be 10 integers"),
    (dict(labels=torch.full((10,), 300)), r"labels must be 10 integers from 0 to 255"),
    (dict(n_images=11), r"n_images must be an integer from 1 to 10"),
    (dict(n_images=0), r"n_images must be an integer from 1 to 10"),
    (dict(n_images=10, batch_size=20), r"batch_size must be an integer from 1 to n_images = 10"),
    (dict(n_images=10, n_plot=0), r"n_plot must be an integer from 1 to n_images = 10"),
    (dict(n_images=10, hidden=0), r"hidden must be an integer from 1 to 1024"),
    (dict(n_images=10, hidden=2.5), r"hidden must be an integer"),
    (dict(n_images=10, n_show=17), r"n_show must be an integer from 1 to 16"),
    (dict(n_images=10, beta=0.0), r"beta must be a number from 0.1 to 100"),
    (dict(n_images=10, beta=float("nan")), r"beta must be a number from 0.1 to 100"),
    (dict(n_images=10, lr=0.1), r"lr must be a number from 0.0001 to 0.01"),
])
def test_bad_input_raises_a_clear_value_error(kwargs, match):
    args = dict(images=torch.rand(10, 1, 8, 8), labels=torch.arange(10), n_images=10, batch_size=4, n_plot=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        TrainingExplorer(args.pop("images"), args.pop("labels"), **args)


def test_js_follows_the_widget_conventions():
    own = check_conventions("train", TrainingExplorer)
    for needed in ('"Train"', '"Pause"', '"Reset"', '"data-vaelib-loss"', "requestAnimationFrame"):
        assert needed in own
