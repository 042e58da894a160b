"""The sample-order picture shows what each epoch really visited: every sample once, cut into its batches."""

import numpy as np
import pytest

import epochviz as ev
from epochviz.plots import sample_orders
from epochviz.plots.orders import BOUNDARY_LIMIT


@pytest.fixture(scope="module")
def shuffled_and_not():
    """moons: 320 training samples; batches of 32 (10 per epoch) and of 50 (7 per epoch, the last of 20)."""
    return {
        "shuffled": ev.train("moons", epochs=3, batch_size=32),
        "not shuffled": ev.train("moons", epochs=3, batch_size=50, shuffle=False),
    }


def _cuts(figure, axis):
    """x of the batch boundaries drawn in the panel whose x axis is `axis` ("x", "x2", …)."""
    return [shape.x0 for shape in figure.layout.shapes if shape.xref == axis]


def test_each_row_is_the_order_the_run_visited_and_holds_every_sample_once(shuffled_and_not):
    figure = sample_orders(shuffled_and_not)
    shuffled, in_order = figure.data
    run = shuffled_and_not["shuffled"]
    assert list(shuffled.y) == ["epoch 1", "epoch 2", "epoch 3"]
    for row, epoch in zip(shuffled.z, (1, 2, 3), strict=True):
        np.testing.assert_array_equal(row, run.sample_order(epoch))
        np.testing.assert_array_equal(np.sort(row), np.arange(320))  # a complete pass: each sample exactly once
    assert not np.array_equal(shuffled.z[0], shuffled.z[1])  # shuffling: a fresh order every epoch
    np.testing.assert_array_equal(in_order.z, np.tile(np.arange(320), (3, 1)))  # no shuffling: the same ramp


def test_batch_boundaries_fall_every_batch_size_positions_in_each_panel(shuffled_and_not):
    figure = sample_orders(shuffled_and_not)
    assert _cuts(figure, "x") == [32 * k + 0.5 for k in range(1, 10)]  # 10 batches: 9 cuts
    assert _cuts(figure, "x2") == [50 * k + 0.5 for k in range(1, 7)]  # 7 batches: 6 cuts
    batches = figure.data[1].customdata[0]
    assert (batches[0], batches[49], batches[50], batches[-1]) == (1, 1, 2, 7)
    titles = [note.text for note in figure.layout.annotations]
    assert titles == [
        "shuffled: 320 training samples → 10 batches per epoch (each of 32)",
        "not shuffled: 320 training samples → 7 batches per epoch (6 of 50, 1 of 20)",
    ]


def test_positions_dropped_with_drop_last_stay_blank():
    run = ev.train("moons", epochs=2, batch_size=50, drop_last=True)
    (heatmap,) = sample_orders(run).data
    assert np.isnan(heatmap.z[:, 300:].astype(float)).all() and not np.isnan(heatmap.z[:, :300].astype(float)).any()
    assert sample_orders(run).layout.annotations[0].text.endswith("(each of 50; the last 20 samples dropped)")
    whole = ev.train("moons", epochs=1, batch_size=320)
    assert sample_orders(whole).layout.annotations[0].text == "320 training samples → 1 batch per epoch (each of 320)"
    assert not sample_orders(whole).layout.shapes  # one batch: nothing to cut


def test_only_the_epochs_the_run_trained_are_drawn_and_too_many_cuts_are_left_out():
    run = ev.train("moons", epochs=2, batch_size=4)  # 80 batches per epoch
    (heatmap,) = sample_orders(run, epochs=5).data
    assert list(heatmap.y) == ["epoch 1", "epoch 2"]
    assert list(sample_orders(ev.train("moons", epochs=5).first(3)).data[0].y) == ["epoch 1", "epoch 2", "epoch 3"]
    diverged = ev.train("moons", epochs=5, lr=1e4)  # stops inside epoch 1
    assert diverged.completed_epochs == 0 and list(sample_orders(diverged).data[0].y) == ["epoch 1"]
    assert run.steps_per_epoch > BOUNDARY_LIMIT and not sample_orders(run).layout.shapes
    with pytest.raises(ValueError, match="epochs must be 1 or more; got 0"):
        sample_orders(run, epochs=0)
    with pytest.raises(TypeError, match="Run"):
        sample_orders(["not a run"])


def test_the_picture_is_projector_sized_and_its_hover_speaks_in_epochs_batches_and_samples(shuffled_and_not):
    figure = sample_orders(shuffled_and_not)
    assert figure.layout.font.size >= 16 and figure.layout.height == 460
    assert sample_orders({str(k): shuffled_and_not["shuffled"] for k in range(4)}).layout.height > 460
    hover = figure.data[0].hovertemplate
    assert "position %{x} (batch %{customdata})" in hover and "visits training sample %{z:.0f}" in hover
    assert [trace.showscale for trace in figure.data] == [True, False]  # one colour bar for the shared scale
