"""Epochs are units of work on any arithmetic (kernel paths, float64, a GPU); windows of N samples are epochs too."""

import subprocess

import numpy as np
import pytest
import torch

import epochviz as ev
from epochviz import hardware
from epochviz.hardware import cpu_kernel_paths

TINY = ev.moons(n=40, seed=0)


@pytest.fixture(scope="module")
def two_kernel_paths():
    """moons trained on the plain kernels and on the AVX2 ones (and in float64), each in its own process."""
    if "avx2" not in cpu_kernel_paths():
        pytest.skip("this CPU runs only torch's plain kernels")
    return ev.compare_hardware("moons", epochs=10, kernels=("default", "avx2"))


def test_each_kernel_path_trains_in_a_process_that_really_runs_it(two_kernel_paths):
    assert two_kernel_paths.kernels == {
        "CPU · default kernels": "DEFAULT",
        "CPU · default kernels · float64": "DEFAULT",
        "CPU · AVX2 kernels": "AVX2",
    }
    plain, avx2 = two_kernel_paths.runs["CPU · default kernels"], two_kernel_paths.runs["CPU · AVX2 kernels"]
    # the same samples in the same order, different arithmetic: close, but not the same bits
    assert list(avx2.steps.samples_seen) == list(plain.steps.samples_seen)
    np.testing.assert_allclose(avx2.steps.loss, plain.steps.loss, rtol=1e-4)
    assert not np.array_equal(avx2.steps.loss, plain.steps.loss)
    assert not np.array_equal(avx2.params(10), plain.params(10))
    assert not plain.can_resume and "another process" in plain.cannot_resume_because


def test_the_float64_run_trains_in_float64(two_kernel_paths):
    float64 = two_kernel_paths.runs["CPU · default kernels · float64"]
    assert float64.config.precision == "float64" and float64.params(10).dtype == np.float64
    assert {parameter.dtype for parameter in float64.model.parameters()} == {torch.float64}


def test_the_agreement_table_says_what_holds_and_what_does_not(two_kernel_paths):
    table = two_kernel_paths.agreement(loss=0.35)
    assert list(table.index) == ["another CPU kernel path", "float64 instead of float32", "a GPU instead of the CPU"]
    # only answers that hold on every CPU: whether two kernel paths agree in every bit depends on the processor
    assert list(table.columns) == ["epochs to reach the loss", "last loss, 3 digits"]
    for kind in ["another CPU kernel path", "float64 instead of float32"]:
        assert table.loc[kind, "epochs to reach the loss"] == "same (6)"
        assert table.loc[kind, "last loss, 3 digits"] == "same (0.309)"
    with pytest.raises(ValueError, match="loss"):
        two_kernel_paths.agreement(loss=-1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_the_gpu_run_is_skipped_with_a_sentence(two_kernel_paths):
    assert two_kernel_paths.skipped == {"GPU": "no CUDA GPU here"}
    assert not any(label.startswith("GPU") for label in two_kernel_paths.runs)
    row = two_kernel_paths.agreement(loss=0.35).loc["a GPU instead of the CPU"]
    assert set(row) == {"skipped: no CUDA GPU here"}


def test_a_kernel_path_the_cpu_lacks_is_skipped_not_run(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_kernel_paths", lambda: ("default",))
    comparison = ev.compare_hardware(TINY, epochs=1, kernels=("default", "avx512"))
    assert comparison.skipped["CPU · AVX512 kernels"] == "this CPU cannot run avx512 kernels (its best are default)"
    assert list(comparison.runs) == ["CPU · default kernels", "CPU · default kernels · float64"]


def test_the_cpu_kernel_paths_are_those_up_to_torchs_own_choice():
    paths = cpu_kernel_paths()
    assert paths[0] == "default" and paths == hardware.KERNEL_PATHS[: len(paths)]


def test_when_one_process_fails_the_others_are_stopped(monkeypatch):
    if "avx2" not in cpu_kernel_paths():
        pytest.skip("this CPU runs only torch's plain kernels")
    started = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    # the plain-kernel process fails at once; the AVX2 one would sleep for a minute
    failing = "import os, sys, time; os.environ['ATEN_CPU_CAPABILITY'] == 'avx2' and time.sleep(60); sys.exit('no')"
    monkeypatch.setattr(hardware, "_CHILD", failing)
    monkeypatch.setattr(hardware.subprocess, "Popen", recording_popen)
    with pytest.raises(RuntimeError, match="default runs failed"):
        ev.compare_hardware(TINY, epochs=1, kernels=("default", "avx2"))
    assert len(started) == 2 and all(process.poll() is not None for process in started)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"device": "cpu"}, "chooses device"),
        ({"precision": "float64"}, "chooses precision"),
        ({"on_epoch": print}, "on_epoch"),
        ({"kernels": ("avx2",)}, "must include 'default'"),
        ({"kernels": ("default", "sse")}, "each of kernels"),
        ({"timeout_s": 1}, "timeout_s"),
        ({"lr": -1}, "lr"),
    ],
)
def test_compare_hardware_refuses_what_it_cannot_do_before_starting_any_process(arguments, message):
    with pytest.raises(ValueError, match=message):
        ev.compare_hardware(TINY, **arguments)


def test_precision_is_checked_and_kept_in_the_config():
    with pytest.raises(ValueError, match="precision must be one of 'float32', 'float64'; got 'half'"):
        ev.train("moons", precision="half")
    float32, float64 = ev.train(TINY, epochs=2), ev.train(TINY, epochs=2, precision="float64")
    assert float32.config.precision == "float32" and float64.config.dtype == torch.float64
    assert float32.params(2).dtype == np.float32 and float64.params(2).dtype == np.float64
    np.testing.assert_allclose(float64.steps.loss, float32.steps.loss, rtol=1e-5)
    assert not np.array_equal(float64.steps.loss, float32.steps.loss)


def test_a_float64_run_resumes_from_its_checkpoint_in_float64(tmp_path):
    path = tmp_path / "run.pt"
    ev.train(TINY, epochs=2, precision="float64", checkpoint=str(path))
    resumed = ev.resume(str(path), epochs=4)
    whole = ev.train(TINY, epochs=4, precision="float64")
    np.testing.assert_array_equal(resumed.steps.loss, whole.steps.loss)
    assert resumed.params(4).dtype == np.float64


@pytest.mark.parametrize("shuffle", [False, True])
def test_windows_ending_at_epoch_boundaries_are_the_epochs(shuffle):
    run = ev.train("moons", epochs=5, batch_size=24, shuffle=shuffle)
    windows = ev.sliding_windows(run)
    boundaries = windows[windows.at_boundary]
    assert list(boundaries.samples_seen) == list(run.epochs.samples_seen)
    np.testing.assert_allclose(boundaries.window_loss, run.epochs.train_loss, rtol=1e-12)
    assert (boundaries.coverage == 1.0).all()


def test_without_shuffling_every_window_is_a_complete_pass_and_with_shuffling_some_are_not():
    fixed = ev.sliding_windows(ev.train("moons", epochs=4, batch_size=10, shuffle=False))
    assert len(fixed) == 4 * 32 - 31 and (fixed.coverage == 1.0).all()
    shuffled = ev.sliding_windows(ev.train("moons", epochs=4, batch_size=10, shuffle=True))
    assert shuffled.coverage.min() < 0.9


def test_window_loss_is_the_mean_over_exactly_width_samples():
    run = ev.train("moons", epochs=2, batch_size=30, shuffle=False)
    windows = ev.sliding_windows(run, width=45)
    steps = run.steps
    per_sample = np.repeat(steps.loss.to_numpy(), steps.batch_size.to_numpy())
    for end, loss in zip(windows.samples_seen, windows.window_loss, strict=True):
        assert loss == pytest.approx(per_sample[end - 45 : end].mean(), rel=1e-12)
    assert not windows.at_boundary.any()


def test_the_summary_table_says_which_runs_continue_between_epochs():
    runs = {mode: ev.train("moons", epochs=3, reset=mode, batch_size=64) for mode in ("never", "weights")}
    table = ev.summarize(runs)
    assert list(table.run) == ["never", "weights"]
    assert list(table.weights_continue) == [True, False]
    assert list(table.samples_per_epoch) == [320, 320] and list(table.steps_per_epoch) == [5, 5]
    assert table.last_train_loss.iloc[0] == runs["never"].epochs.train_loss.iloc[-1]
    assert not table.diverged.any()
