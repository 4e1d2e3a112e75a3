"""vaelib.plot helpers: what they draw and how they refuse bad input."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vaelib.plot import plot_activity  # noqa: E402


def test_plot_activity_sorts_each_model_and_counts_its_active_units():
    a = torch.tensor([0.5, 1e-9, 0.02, 0.001])
    b = np.array([0.3, 0.2, 0.1, 0.05])
    ax = plot_activity([a, b], ["first", "second"], threshold=0.01)
    first, second, line = ax.get_lines()
    np.testing.assert_allclose(first.get_ydata(), [0.5, 0.02, 0.001, 1e-6])
    np.testing.assert_allclose(second.get_ydata(), [0.3, 0.2, 0.1, 0.05])
    np.testing.assert_allclose(line.get_ydata(), [0.01, 0.01])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["first (2 active)", "second (4 active)",
                                                                 "threshold 0.01"]
    assert ax.get_yscale() == "log" and ax.get_xlabel() and ax.get_ylabel()
    plt.close("all")


def test_plot_activity_refuses_mismatched_labels_and_shapes():
    with pytest.raises(ValueError, match="one label per model"):
        plot_activity([np.ones(3)], ["a", "b"])
    with pytest.raises(ValueError, match="1-D"):
        plot_activity([np.ones((2, 3))], ["a"])
