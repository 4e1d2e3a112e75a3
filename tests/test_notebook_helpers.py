"""vaelib.notebook: glue prints where myst-nb is missing (Colab), and the one-line CPU notice in Colab."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

import vaelib
from vaelib import notebook


def test_glue_prints_name_and_python_value_without_myst_nb(monkeypatch, capsys):
    monkeypatch.setattr(notebook, "_myst_glue", None)
    notebook.glue("x", np.float64(1.5))
    notebook.glue("t", torch.tensor(3))
    notebook.glue("s", notebook.Text("zero and one"))
    assert capsys.readouterr().out == "x: 1.5\nt: 3\ns: zero and one\n"


def test_glue_hands_python_numbers_to_myst_nb(monkeypatch):
    calls = []
    monkeypatch.setattr(notebook, "_myst_glue", lambda name, value, display: calls.append((name, value, display)))
    notebook.glue("x", torch.tensor(2.5))
    assert calls == [("x", 2.5, False)] and type(calls[0][1]) is float


def test_text_shows_without_quotes():
    assert repr(notebook.Text("a, b")) == "a, b" == str(notebook.Text("a, b"))


@pytest.fixture
def colab(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(notebook, "_CPU_NOTICE_SHOWN", False)


def test_cpu_notice_in_colab_once_from_the_first_training(colab, capsys):
    model = vaelib.VAE(8, hidden=(4,), latent_dim=2)
    for _ in range(2):
        vaelib.fit(model, torch.rand(4, 8), epochs=1, device="cpu", verbose=False)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "CPU" in out and "Runtime -> Change runtime type" in out


def test_no_cpu_notice_outside_colab_or_on_a_gpu(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(notebook, "_CPU_NOTICE_SHOWN", False)
    notebook.cpu_notice(torch.device("cpu"))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    notebook.cpu_notice(torch.device("cuda"))
    assert capsys.readouterr().out == ""


def test_counted_puts_the_noun_in_the_right_number():
    from vaelib.notebook import counted

    assert counted(1, "epoch") == "1 epoch"
    assert counted(0, "epoch") == "0 epochs"
    assert counted(3000, "epoch") == "3,000 epochs"
    assert counted(1, "pass", "passes") == "1 pass"
    assert counted(2, "pass", "passes") == "2 passes"
