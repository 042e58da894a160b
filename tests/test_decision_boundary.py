"""The decision boundary draws what each epoch's recorded weights predict, frame by frame."""

import numpy as np
import pytest
import torch
from torch import nn

import epochviz as ev
from epochviz import checkpoint
from epochviz.models import flat_parameters, forward_from_flat
from epochviz.plots import decision_boundary, decision_surface
from epochviz.plots.boundary import CONFIDENT, MAX_FRAMES

RESOLUTION = 20  # a small grid keeps the tests quick; the arithmetic is the same at 60


@pytest.fixture(scope="module")
def run():
    return ev.train("moons", epochs=3, seed=0)


def _by_hand(net: nn.Module, flat: np.ndarray, point: tuple[float, float]) -> tuple[int, float]:
    """The class and probability `net` predicts at `point` holding the weights `flat`, in plain PyTorch."""
    torch.nn.utils.vector_to_parameters(torch.tensor(flat), net.parameters())
    with torch.no_grad():
        probabilities = torch.softmax(net(torch.tensor([point], dtype=torch.float32)), dim=1)[0]
    return int(probabilities.argmax()), float(probabilities.max())


@pytest.mark.parametrize("epoch", [1, 3])
def test_each_cell_shows_what_the_weights_recorded_at_that_epochs_end_predict(run, epoch):
    figure = decision_boundary(run, resolution=RESOLUTION)
    heatmap = figure.data[0]
    surface = decision_surface(run, epoch, resolution=RESOLUTION)
    for row, column in [(0, 0), (7, 12), (RESOLUTION - 1, 3)]:
        point = (heatmap.x[column], heatmap.y[row])
        predicted, probability = _by_hand(ev.mlp(2, 2, seed=0), run.params(epoch, "end"), point)
        certainty = (probability - 0.5) / 0.5
        assert surface["z"][row, column] == pytest.approx(predicted + CONFIDENT * certainty, abs=1e-5)
        assert surface["customdata"][row, column].tolist() == [predicted, round(probability * 100)]
    frame = next(frame for frame in figure.frames if frame.name == str(epoch))
    np.testing.assert_array_equal(frame.data[0].z, surface["z"])


def test_frame_0_shows_the_untrained_model_and_training_changes_the_picture(run):
    heatmap = decision_boundary(run, resolution=RESOLUTION).data[0]
    untrained = ev.mlp(2, 2, seed=0)  # the seed gives the weights train() starts from
    predicted, probability = _by_hand(untrained, flat_parameters(untrained).numpy(), (heatmap.x[4], heatmap.y[15]))
    start, first, last = (decision_surface(run, k, resolution=RESOLUTION) for k in (0, 1, 3))
    assert start["customdata"][15, 4].tolist() == [predicted, round(probability * 100)]
    assert not np.allclose(start["z"], first["z"]) and not np.allclose(first["z"], last["z"])


@pytest.mark.parametrize(("reset", "same"), [("weights", True), ("never", False)])
def test_a_weights_reset_ends_every_epoch_where_epoch_1_ended(reset, same):
    """Without shuffling every epoch visits the same batches; starting from the same weights, it ends the same."""
    run = ev.train("moons", epochs=4, reset=reset, shuffle=False, seed=0)
    first = decision_surface(run, 1, resolution=RESOLUTION)["z"]
    later = [decision_surface(run, k, resolution=RESOLUTION)["z"] for k in (2, 3, 4)]
    assert all(np.array_equal(z, first) for z in later) is same


def test_there_is_a_frame_and_a_slider_step_per_epoch_and_it_opens_at_the_asked_epoch(run):
    figure = decision_boundary(run, epoch=2, resolution=RESOLUTION)
    names = ["0", "1", "2", "3"]
    assert [frame.name for frame in figure.frames] == names
    (slider,) = figure.layout.sliders
    assert [step.label for step in slider.steps] == names
    assert [list(step.args[0]) for step in slider.steps] == [[name] for name in names]
    assert slider.active == 2
    np.testing.assert_array_equal(figure.data[0].z, decision_surface(run, 2, resolution=RESOLUTION)["z"])
    assert figure.layout.updatemenus[0].buttons[0].method == "animate"
    assert [trace.name for trace in figure.data[1:]] == ["class 0 (training)", "class 1 (training)"]
    assert sum(len(trace.x) for trace in figure.data[1:]) == len(run.train_indices)


def test_a_long_run_gets_evenly_spaced_frames_that_include_the_first_the_last_and_the_asked_epoch():
    run = ev.train(ev.moons(n=40), epochs=MAX_FRAMES + 9, batch_size=64, seed=0)
    figure = decision_boundary(run, epoch=7, resolution=10)
    shown = [int(frame.name) for frame in figure.frames]
    assert shown[0] == 0 and shown[-1] == run.completed_epochs and 7 in shown
    assert MAX_FRAMES < len(shown) <= MAX_FRAMES + 2 and shown == sorted(set(shown))


def test_a_run_read_back_from_its_checkpoint_draws_the_same_boundary(tmp_path):
    trained = ev.train("spirals", epochs=2, seed=1, checkpoint=tmp_path / "run.pt")
    saved = checkpoint.load(tmp_path / "run.pt")["run"]
    assert saved.model is None
    for epoch in (0, 2):
        np.testing.assert_array_equal(decision_surface(saved, epoch, resolution=RESOLUTION)["z"],
                                      decision_surface(trained, epoch, resolution=RESOLUTION)["z"])  # fmt: skip


def test_a_module_of_your_own_is_rebuilt_from_the_record():
    own = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    run = ev.train("circles", model=own, epochs=2, seed=0)
    heatmap = decision_boundary(run, resolution=RESOLUTION).data[0]
    point = (heatmap.x[5], heatmap.y[9])
    predicted, probability = _by_hand(nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2)),
                                      run.params(2, "end"), point)  # fmt: skip
    assert decision_surface(run, 2, resolution=RESOLUTION)["customdata"][9, 5].tolist() == [
        predicted, round(probability * 100)]  # fmt: skip


def test_a_module_with_buffers_the_record_does_not_hold_is_refused():
    own = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    run = ev.train("moons", model=own, epochs=1, seed=0)
    with pytest.raises(ValueError, match=r"Sequential keeps buffers .* cannot be rebuilt"):
        decision_boundary(run)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ev.train("line", model="linear", epochs=1), "'line' is a regression task"),
        (lambda: ev.train(ev.digits(n=60), epochs=1), "two features, but 'digits' has 64"),
        (lambda: ev.train("moons", epochs=1).first(0), "no completed epoch"),
    ],
    ids=["regression", "not 2-D", "no epochs"],
)
def test_a_run_with_no_boundary_on_a_plane_is_refused_in_one_sentence(make, message):
    run = make()
    for draw in (decision_boundary, lambda run: decision_surface(run, 0)):
        with pytest.raises(ValueError, match=message):
            draw(run)


def test_bad_arguments_are_named(run):
    with pytest.raises(TypeError, match="run must be a Run"):
        decision_boundary("moons")
    with pytest.raises(ValueError, match="epoch must be from 0 to 3"):
        decision_boundary(run, epoch=4)
    with pytest.raises(ValueError, match="resolution must be from 10 to 200"):
        decision_surface(run, 1, resolution=5)
    with pytest.raises(ValueError, match=r"x must hold samples of 'moons', shape \(samples, 2\); got shape \(3,\)"):
        run.predict([1.0, 2.0, 3.0], epoch=1)
    with pytest.raises(ValueError, match="flat must hold the 162 parameters of Sequential"):
        forward_from_flat(ev.mlp(2, 2, hidden=(32,)), np.zeros(5), torch.zeros(1, 2))


def test_predict_gives_each_class_a_probability_and_a_regression_one_value(run):
    probabilities = run.predict(run.data.x[:5].numpy(), epoch=3)
    assert probabilities.shape == (5, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-6)
    line = ev.train("line", model="linear", epochs=1)
    slope, intercept = line.params(1, "end")
    np.testing.assert_allclose(line.predict([[2.0]], epoch=1), [2 * slope + intercept], rtol=1e-6)
