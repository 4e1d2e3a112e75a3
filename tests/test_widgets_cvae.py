"""The conditional VAE explorer: the decoder p(x | z, y) it embeds, and the JavaScript that runs it in the page.

The widget feeds ``[z1, z2, one_hot(y)]`` to the embedded decoder layers (js/cvae.js, with common.js's parseLayers and
decode). Here the JavaScript itself runs under Node on the widget's state and is compared with the model's own
``torch.sigmoid(model.decode(z, y))`` for every class; a model that feeds its class another way is refused. The
browser test (tests/browser/test_cvae.py) checks that the built page responds.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import vaelib
from vaelib.widgets import CVAEExplorer, LatentExplorer

from widget_js import check_conventions, needs_node, run_node

N_CLASSES = 10


def _model(hidden=(32,), seed=0, likelihood="bernoulli"):
    torch.manual_seed(seed)
    model = vaelib.CVAE(784, N_CLASSES, hidden=hidden, latent_dim=2, likelihood=likelihood)
    with torch.no_grad():   # larger weights than the default init, so that ReLUs and the sigmoid's tails are exercised
        for p in model.decoder.parameters():
            p.mul_(3.0)
    return model.eval()


def _torch_means(model, z, y):
    with torch.no_grad():
        out = model.decode(torch.as_tensor(z, dtype=torch.float32), torch.as_tensor(y))
        out = torch.sigmoid(out) if model.likelihood == "bernoulli" else out.clamp(0, 1)
    return out.reshape(len(z), -1).double().numpy()


Z = np.random.default_rng(1).normal(scale=2.0, size=(N_CLASSES * 2, 2)).astype(np.float32)
Y = np.tile(np.arange(N_CLASSES), 2)


def _js_decode(tmp_path, state, z, y):
    payload = {"layers": state["layers"], "dtype": state["dtype"], "output": state["output"], "n": state["n_classes"],
               "z": z.tolist(), "y": y.tolist()}
    return np.array(run_node(tmp_path, "cvae", "const net = m.parseLayers(s.layers, s.dtype);\n"
                             "console.log(JSON.stringify(s.z.map((z, i) => "
                             "Array.from(m.decodeClass(net, z, s.y[i], s.n, s.output)))));\n", payload))


@needs_node
@pytest.mark.parametrize("hidden", [(32,), (24, 16)])
def test_the_javascript_decodes_every_class_like_torch(tmp_path, hidden):
    model = _model(hidden)
    state = CVAEExplorer(model, dtype="float32").get_state()
    assert state["layers"][0]["cols"] == 2 + N_CLASSES and state["n_classes"] == N_CLASSES
    want = _torch_means(model, Z, Y)
    np.testing.assert_allclose(_js_decode(tmp_path, state, Z, Y), want, atol=2e-6, rtol=0)
    # The class changes the image: the same z decoded with two classes differs (a decoder ignoring y would fail).
    assert np.abs(want[:N_CLASSES] - _torch_means(model, Z[:N_CLASSES], (Y[:N_CLASSES] + 1) % N_CLASSES)).max() > 0.2


@needs_node
def test_float16_weights_decode_like_a_model_with_rounded_weights(tmp_path):
    model = _model()
    state = CVAEExplorer(model).get_state()
    assert state["dtype"] == "float16"
    got = _js_decode(tmp_path, state, Z, Y)
    full = _torch_means(model, Z, Y)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.copy_(p.half().float())
    np.testing.assert_allclose(got, _torch_means(model, Z, Y), atol=2e-6, rtol=0)
    assert np.abs(got - full).max() < 0.02


@needs_node
def test_one_hot_puts_the_class_after_z(tmp_path):
    out = run_node(tmp_path, "cvae", "console.log(JSON.stringify([m.oneHot(3, 5), m.oneHot(0, 1)]));\n", {})
    assert out == [[0, 0, 0, 1, 0], [1]]


def test_gaussian_decoder_shows_the_clipped_mean():
    state = CVAEExplorer(_model(likelihood="gaussian"), dtype="float32").get_state()
    assert state["output"] == "identity"


class _ClassFirst(nn.Module):
    """A conditional decoder that reads [one_hot(y), z]: the widget must refuse it."""

    likelihood, latent_dim, n_classes, image_shape = "bernoulli", 2, 3, (1, 4, 4)

    def __init__(self):
        super().__init__()
        self.decoder = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 16))

    def decode(self, z, y):
        return self.decoder(torch.cat([F.one_hot(y, 3).float(), z], 1))


def test_codes_of_each_class_are_kept_with_their_labels():
    codes, labels = torch.randn(3000, 2), torch.randint(0, N_CLASSES, (3000,))
    w = CVAEExplorer(_model(), codes, labels, max_points=400, digit=7, label_names=[f"d{k}" for k in range(10)])
    pts = LatentExplorer.decode_floats(w.points).reshape(-1, 2)
    lookup = {tuple(c): int(l) for c, l in zip(codes.numpy().tolist(), labels.tolist())}
    assert pts.shape == (400, 2) and all(lookup[tuple(p)] == l for p, l in zip(pts.tolist(), w.labels))
    assert w.digit == 7 and w.label_names[7] == "d7" and w.extent >= 3.0
    assert w.embedded_bytes() > sum(len(layer["weight"]) for layer in w.layers) + len(w.points)


@pytest.mark.parametrize("bad, match", [
    (lambda: CVAEExplorer(vaelib.VAE(784, hidden=(8,), latent_dim=2)), "n_classes"),
    (lambda: CVAEExplorer(vaelib.CVAE(784, 10, hidden=(8,), latent_dim=3)), "latent_dim=2"),
    (lambda: CVAEExplorer(_ClassFirst()), "another way"),
    (lambda: CVAEExplorer(_model(), digit=10), "digit must be an integer from 0 to 9"),
    (lambda: CVAEExplorer(_model(), dtype="float64"), "dtype"),
    (lambda: CVAEExplorer(_model(), torch.randn(5, 3)), r"shape \(N, 2\)"),
])
def test_bad_input_raises_a_clear_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_js_follows_the_widget_conventions():
    own = check_conventions("cvae", CVAEExplorer)
    assert "imageCanvas(" in own and "latentPoint(" in own and "decode(" in own
