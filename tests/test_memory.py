"""Memory: what a step holds, which batches fit, and accumulation as the remedy."""

import numpy as np
import pytest
import torch

import epochviz as ev
from epochviz.memory import MB, OutOfMemoryError, footprint, max_batch_size


def test_activations_are_exactly_the_tensors_a_known_mlp_saves_for_backward():
    """2 → 32 → 32 → 2 with ReLU and cross-entropy, batch B: autograd keeps the input (B×2),
    both ReLU outputs (B×32 each), the log-softmax (B×2) as float32, the targets (B, int64)
    and the loss's scalar weight; the weights themselves are not activations."""
    data = ev.moons()
    for batch in (1, 32, 500):
        expected = 4 * batch * (2 + 32 + 32 + 2) + 8 * batch + 4
        assert footprint("mlp", data, batch).activations == expected


def test_parameters_gradients_and_optimizer_state_do_not_grow_with_the_batch():
    data = ev.moons()
    parameters = (2 * 32 + 32) + (32 * 32 + 32) + (32 * 2 + 2)
    small, large = footprint("mlp", data, 8), footprint("mlp", data, 4096)
    assert small.params == large.params == small.grads == 4 * parameters
    assert small.optimizer_state == 0
    assert footprint("mlp", data, 8, "momentum").optimizer_state == 4 * parameters
    assert footprint("mlp", data, 8, "adam").optimizer_state >= 2 * 4 * parameters
    assert large.total == large.params + large.grads + large.optimizer_state + large.activations + large.data


def test_footprints_above_the_measured_range_extrapolate_the_measured_line():
    data = ev.moons()
    assert footprint("mlp", data, 20000).activations == 4 * 20000 * 68 + 8 * 20000 + 4


@pytest.mark.parametrize(("name", "budget"), [("moons", 0.5), ("digits", 1.0), ("digits", 0.5)])
def test_max_batch_size_is_the_boundary_of_what_fits(name, budget):
    data = ev.dataset(name)
    largest = max_batch_size("mlp", data, budget)
    assert largest >= 1
    assert footprint("mlp", data, largest).total_mb <= budget < footprint("mlp", data, largest + 1).total_mb


def test_nothing_fits_a_budget_smaller_than_the_weights():
    assert max_batch_size("mlp", ev.digits(), budget_mb=0.001) == 0


def test_a_batch_too_big_for_the_budget_fails_before_the_first_step_and_says_what_fits():
    data = ev.moons(n=5000)
    seen = []
    with pytest.raises(OutOfMemoryError) as raised:
        ev.train(data, batch_size=4000, memory_budget_mb=0.5, on_epoch=seen.append)
    error = raised.value
    assert not seen
    assert error.budget_mb == 0.5 and error.needed_mb > 0.5
    assert error.largest_batch_size == max_batch_size("mlp", data, 0.5)
    assert f"largest batch that fits is {error.largest_batch_size}" in str(error)
    assert "accumulate=3" in str(error)
    ev.train(data, batch_size=4000, memory_budget_mb=0.5, accumulate=3, epochs=1)  # the remedy fits


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_accumulation_gives_the_same_training_with_a_fraction_of_the_activations(optimizer):
    lr = 0.1 if optimizer == "sgd" else 0.01
    whole = ev.train("digits", epochs=2, batch_size=64, optimizer=optimizer, lr=lr)
    split = ev.train("digits", epochs=2, batch_size=64, optimizer=optimizer, lr=lr, accumulate=4)
    # micro-batch gradients are float32 sums in another order: a few ulps per step, far below 1e-5 on every
    # kernel path (default, AVX2, AVX-512), while a wrong weighting of the pieces would be off by percents
    np.testing.assert_allclose(split.steps.loss, whole.steps.loss, rtol=1e-5)
    np.testing.assert_allclose(split.params(2, "end"), whole.params(2, "end"), rtol=1e-5, atol=1e-6)
    ratio = footprint("mlp", ev.digits(), 16).activations / footprint("mlp", ev.digits(), 64).activations
    assert ratio == pytest.approx(1 / 4, rel=0.01)


def test_a_real_device_running_out_becomes_our_error(monkeypatch):
    class Hungry(torch.nn.Linear):
        def forward(self, x):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(OutOfMemoryError, match=r"Out of memory on cpu with batch_size=32.*accumulate"):
        ev.train("moons", model=Hungry(2, 2))


def test_the_footprint_counts_the_data_the_run_keeps_on_the_device():
    """`train` puts its training and validation samples on the device once: the footprint counts exactly those bytes."""
    data = ev.digits()
    run = ev.train(data, epochs=1, batch_size=256, memory_budget_mb=10.0)
    state = run.training_state
    on_device = sum(tensor.nbytes for tensor in (state.x, state.y, state.x_val, state.y_val))
    step = footprint("mlp", data, 256)
    assert step.data == on_device == data.x.nbytes + data.y.nbytes
    assert step.total_mb == pytest.approx((step.params + step.grads + step.activations + on_device) / MB)


def test_a_step_that_fits_only_without_its_data_is_refused():
    data = ev.digits()  # 0.45 MB of samples, more than everything else a step of 64 holds
    step = footprint("mlp", data, 64)
    without_data = (step.total - step.data) / MB
    budget = (without_data + step.total_mb) / 2
    with pytest.raises(OutOfMemoryError, match=r"data 0\.452 MB"):
        ev.train(data, batch_size=64, memory_budget_mb=budget)
    assert max_batch_size("mlp", data, without_data) == 0


def test_a_budget_checks_only_the_rows_the_run_keeps():
    data = ev.digits()
    rows = np.arange(600)
    kept = footprint("mlp", data.subset(rows), 32)
    ev.train(data, epochs=1, split=(rows[:500], rows[500:]), memory_budget_mb=kept.total_mb * 1.001)  # fits
    assert footprint("mlp", data, 32).total_mb > kept.total_mb * 1.001  # all of `data` would not


def test_batch_norm_buffers_count_as_the_models_memory():
    net = ev.mlp(64, 10, batch_norm=True)
    buffers = sum(buffer.nbytes for buffer in net.buffers())
    assert buffers == 2 * (32 * 4 * 2 + 8)  # two layers: running mean and variance (float32), a step count (int64)
    step = footprint("mlp_batchnorm", ev.digits(), 8)
    assert step.params == step.grads + buffers


def test_max_batch_size_of_a_batch_norm_model_is_the_boundary_of_what_fits():
    data = ev.digits()
    largest = max_batch_size("mlp_batchnorm", data, 1.0)
    inside, outside = (footprint("mlp_batchnorm", data, size).total_mb for size in (largest, largest + 1))
    assert largest > 2 and inside <= 1.0 < outside


def test_megabytes_are_mebibytes():
    assert MB == 2**20


def test_only_the_activations_grow_with_the_batch_in_words():
    assert ev.memory.parts_that_grow("mlp", ev.digits(), (512, 1024), optimizer="adam") == "activations"
    assert ev.memory.parts_that_grow("mlp", ev.digits(), (64, 64)) == "nothing"
    with pytest.raises(TypeError, match="batch_sizes must be two batch sizes"):
        ev.memory.parts_that_grow("mlp", ev.digits(), (512,))
