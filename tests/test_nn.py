"""The trainer: layers, losses, optimizers, fit on real data, and inputs checked up front."""

import numpy as np
import pytest

import course_ad as ad
from course_ad import data, nn, optim, train
from course_ad.cli import main as cli_main


def test_digits_mlp_reaches_97_percent_test_accuracy():
    """The issue's configuration: stratified 75/25 split, inputs / 16, MLP 64-64-10 ReLU,
    Adam lr 1e-3, batch 32, 30 epochs."""
    X_train, X_test, y_train, y_test = data.digits(test_size=0.25, seed=0)
    model = nn.MLP([64, 64, 10], activation="relu", seed=0)
    history = train.fit(model, X_train, y_train, optimizer=optim.Adam(model.parameters(), lr=1e-3),
                        epochs=30, batch_size=32, progress=False)
    scores = train.evaluate(model, X_test, y_test)
    assert scores["accuracy"] >= 0.97, scores
    assert history.epochs == 30 and history.loss[-1] < history.loss[0] / 10


def test_micrograd_demo_network_separates_the_moons():
    X, y = data.moons(100, noise=0.1, seed=1)
    model = nn.MLP([2, 16, 16, 1], seed=0)
    history = train.fit(model, X, y, loss="hinge",
                        optimizer=optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                        epochs=100, batch_size=100, progress=False)
    assert train.evaluate(model, X, y, loss="hinge")["accuracy"] >= 0.97
    assert history.accuracy[-1] >= 0.97


def test_gradcheck_passes_on_the_mlp_loss_for_every_parameter():
    X, y = data.spirals(30, classes=3, seed=2)
    model = nn.MLP([2, 5, 3], activation="tanh", seed=1)
    params = model.parameters()
    assert [p.value.shape for p in params] == [(2, 5), (5,), (5, 3), (3,)]

    def loss_of(*values):
        for p, v in zip(params, values):
            p.value = v
        with model.no_graph():
            return nn.cross_entropy(model(X), y)

    def traced_loss(*values):
        return nn.cross_entropy(ad.tanh(X @ values[0] + values[1]) @ values[2] + values[3], y)

    values = [p.value.copy() for p in params]
    assert np.isclose(loss_of(*values), traced_loss(*values))
    report = ad.gradcheck(traced_loss, *values, order=1)
    assert report, report
    out = nn.cross_entropy(model(X), y)
    out.backward()
    for p, g in zip(params, ad.grad(traced_loss, argnums=(0, 1, 2, 3))(*values)):
        np.testing.assert_allclose(p.grad, g, rtol=1e-12)


def test_no_graph_evaluates_on_plain_arrays():
    model = nn.MLP([3, 4, 2], seed=0)
    x = np.ones((5, 3))
    traced = model(x)
    with model.no_graph():
        plain = model(x)
    assert isinstance(traced, ad.ReverseDiff) and type(plain) is np.ndarray
    np.testing.assert_array_equal(traced.value, plain)
    assert all(isinstance(p, ad.ReverseDiff) for p in model.parameters())  # restored


def test_linear_initialisation_is_seeded_and_scaled():
    a, b = nn.Linear(400, 300, seed=3), nn.Linear(400, 300, seed=3)
    np.testing.assert_array_equal(a.W.value, b.W.value)
    assert np.std(a.W.value) == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    glorot = nn.Linear(400, 300, init="glorot", seed=3)
    assert np.std(glorot.W.value) == pytest.approx(np.sqrt(2 / 700), rel=0.02)
    assert [name for name, _ in nn.MLP([2, 3, 1]).named_parameters()] == [
        "layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"]


def test_sgd_with_momentum_and_weight_decay_follows_its_formula():
    w = ad.ReverseDiff(np.array([1.0, -2.0]))
    opt = optim.SGD([w], lr=0.1, momentum=0.5, weight_decay=0.01)
    velocity = np.zeros(2)
    expected = w.value.copy()
    for _ in range(3):
        ad.sum(w * w).backward()
        g = 2 * expected + 0.01 * expected
        velocity = 0.5 * velocity + g
        expected = expected - 0.1 * velocity
        opt.step()
    np.testing.assert_allclose(w.value, expected, rtol=1e-14)


def test_adam_follows_its_formula():
    w = ad.ReverseDiff(np.array([0.5, -1.5, 3.0]))
    opt = optim.Adam([w], lr=0.01)
    m = s = np.zeros(3)
    expected = w.value.copy()
    for t in range(1, 4):
        ad.sum(ad.sin(w) * w).backward()
        g = np.cos(expected) * expected + np.sin(expected)
        m = 0.9 * m + 0.1 * g
        s = 0.999 * s + 0.001 * g * g
        m_hat, s_hat = m / (1 - 0.9**t), s / (1 - 0.999**t)
        expected = expected - 0.01 * m_hat / (np.sqrt(s_hat) + 1e-8)
        opt.step()
    np.testing.assert_allclose(w.value, expected, rtol=1e-12)


def test_losses():
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    labels = np.array([0, 2])
    lse = np.log(np.exp(logits).sum(axis=1))
    assert nn.cross_entropy(logits, labels) == pytest.approx(np.mean(lse - [2.0, 3.0]))
    assert nn.cross_entropy(np.array([[1000.0, 0.0]]), np.array([1])) == pytest.approx(1000.0)
    assert nn.mse(np.array([1.0, 2.0]), np.array([0.0, 4.0])) == pytest.approx(2.5)
    assert nn.hinge(np.array([[2.0], [-0.5]]), np.array([1, 1])) == pytest.approx(0.75)


@pytest.mark.parametrize("case, message", [
    ("lengths", r"X has 10 samples but y has 9 labels"),
    ("range", r"labels must lie in 0..2 for a model with 3 outputs, got labels from 0 to 3"),
    ("nan", r"X contains NaN or inf \(first at row 4, column 1\)"),
    ("features", r"Linear\(2, 3\): input of shape \(10, 5\) has \(5,\) features, expected 2"),
])
def test_bad_input_is_refused_before_training_starts(case, message):
    X, y = np.ones((10, 2)), np.arange(10) % 3
    if case == "lengths":
        y = y[:9]
    elif case == "range":
        y = y.copy()
        y[7] = 3
    elif case == "nan":
        X = X.copy()
        X[4, 1] = np.nan
    elif case == "features":
        X = np.ones((10, 5))
    model = nn.MLP([2, 3], seed=0)
    before = [p.value.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=message):
        train.fit(model, X, y, epochs=1, progress=False)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.value, b)


def test_step_before_backward_says_what_to_do():
    w = ad.ReverseDiff(np.ones(2))
    with pytest.raises(ValueError, match=r"call loss.backward\(\) before step\(\)"):
        optim.Adam([w]).step()


def test_progress_bar_history_plot_and_decision_boundary(capsys):
    import matplotlib

    matplotlib.use("Agg")
    X, y = data.moons(60, seed=0)
    model = nn.MLP([2, 8, 2], seed=0)
    history = train.fit(model, X, y, epochs=3, validation=(X, y), progress=True)
    progress = capsys.readouterr().err
    assert "epochs: 100%" in progress and "3/3" in progress and "val_acc=" in progress
    assert len(history.val_accuracy) == 3 and "3 epochs" in repr(history)
    figure = history.plot()
    assert len(figure.axes) == 2 and figure.axes[0].get_ylabel() == "loss"
    boundary = train.plot_decision_boundary(model, X, y)
    assert boundary.axes[0].get_title() == "decision boundary"


def test_generated_data_is_seeded_and_shaped():
    X, y = data.moons(101, seed=4)
    assert X.shape == (101, 2) and sorted(np.bincount(y)) == [50, 51]
    np.testing.assert_array_equal(X, data.moons(101, seed=4)[0])
    X, y = data.spirals(90, classes=3, seed=0)
    assert X.shape == (90, 2) and np.bincount(y).tolist() == [30, 30, 30]
    X_train, X_test, y_train, y_test = data.digits()
    assert X_train.shape == (1347, 64) and X_test.shape == (450, 64)
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    counts = np.bincount(np.concatenate([y_train, y_test]))
    assert np.all(np.abs(np.bincount(y_test) - counts / 4) <= 1)  # stratified: a quarter each


def test_make_demo_trains_and_saves_the_curves(tmp_path, capsys):
    plot = tmp_path / "curves.png"
    assert cli_main(["demo", "--epochs", "2", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and plot.stat().st_size > 10_000
