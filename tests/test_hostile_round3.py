"""A third hostile round (issue 26): paths that are not files, checkpoints that save but never resume,
saves that fail mid-run, modules that fail mid-training, workers that outlive their parent, and
messages that name the wrong argument or number.

Each family fails on the code before the fix. Where the message was the bug, the test checks that it
names the right argument and the true value.
"""

import importlib
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import epochviz as ev
from epochviz import checkpoint, parallel

training = importlib.import_module("epochviz.train")  # the module: `epochviz.train` is the function
TINY = ev.moons(n=40, seed=0)
SMALL = {"epochs": 1, "batch_size": 8}


def _must_not_train(*args, **kwargs):
    raise AssertionError("an epoch trained although the call should have been refused before training")


# --- 1: a checkpoint path that is not a regular file ------------------------------------------------


def test_a_device_as_checkpoint_is_refused_by_what_it_is_without_touching_it():
    before = os.stat("/dev/null")  # read-only: the check must refuse it, never write to it
    assert stat.S_ISCHR(before.st_mode)
    with pytest.raises(ValueError, match=r"checkpoint='/dev/null' is a character device, not a regular file"):
        ev.TrainConfig(checkpoint="/dev/null")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def _link_to_a_file(path):
    (path.parent / "real.pt").write_text("mine")
    os.symlink(path.parent / "real.pt", path)


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda path: os.mkfifo(path), "a named pipe (FIFO)"),
        (lambda path: os.symlink(path.parent / "real.pt", path), "a symbolic link"),
        (lambda path: _link_to_a_file(path), "a symbolic link"),
    ],
    ids=["fifo", "dangling-symlink", "symlink-to-a-file"],
)  # fmt: skip
def test_a_checkpoint_path_that_is_not_a_regular_file_is_refused_before_training(tmp_path, monkeypatch, make, kind):
    monkeypatch.setattr(training, "_train_epochs", _must_not_train)
    path = tmp_path / "run.pt"
    make(path)
    before = os.lstat(path)
    with pytest.raises(ValueError, match=rf"^checkpoint=.*run\.pt' is {re.escape(kind)}, not a regular file"):
        ev.train(TINY, checkpoint=str(path), **SMALL)
    assert os.lstat(path).st_mode == before.st_mode and os.lstat(path).st_ino == before.st_ino  # left as it was
    if (tmp_path / "real.pt").exists():
        assert (tmp_path / "real.pt").read_text() == "mine"


# --- 2: whatever save writes, resume reads ------------------------------------------------------------


class _Spare(nn.Module):
    """A layer the forward pass never uses: it never gets a gradient, so Adam and momentum keep no state for it."""

    def __init__(self):
        super().__init__()
        self.used, self.spare = nn.Linear(2, 2), nn.Linear(3, 3)

    def forward(self, x):
        return self.used(x)


class _Frozen(nn.Module):
    """A frozen first layer (requires_grad=False) under one that trains."""

    def __init__(self):
        super().__init__()
        self.frozen, self.head = nn.Linear(2, 4), nn.Linear(4, 2)
        self.frozen.requires_grad_(False)

    def forward(self, x):
        return self.head(torch.relu(self.frozen(x)))


class _Dropout(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.3), nn.Linear(8, 2))

    def forward(self, x):
        return self.net(x)


MODULES = {"mlp": lambda: "mlp", "spare": _Spare, "frozen": _Frozen, "dropout": _Dropout}
DATASETS = {
    "moons": lambda: TINY,
    "numpy-strings": lambda: ev.Dataset(
        TINY.x, TINY.y, np.str_("classification"), np.str_("moons"), (np.str_("a"), np.str_("b"))
    ),
    "class-list": lambda: ev.Dataset(TINY.x, TINY.y, "classification", "moons", ["a", "b"]),
}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    module=st.sampled_from(sorted(MODULES)),
    data=st.sampled_from(sorted(DATASETS)),
    optimizer=st.sampled_from(["sgd", "momentum", "adam"]),
    reset=st.sampled_from(["never", "optimizer", "weights"]),
    stop_after=st.integers(1, 2),
)
def test_every_run_that_saved_resumes_to_the_run_that_never_stopped(tmp_path, module, data, optimizer, reset,
                                                                    stop_after):  # fmt: skip
    model, dataset = MODULES[module](), DATASETS[data]()
    path = tmp_path / f"{module}-{data}-{optimizer}-{reset}-{stop_after}.pt"
    settings = {"model": model, "optimizer": optimizer, "lr": 0.01, "reset": reset, "batch_size": 8, "seed": 3}
    ev.train(dataset, epochs=stop_after, checkpoint=str(path), **settings)
    resumed = ev.resume(path, 3, model=model if isinstance(model, nn.Module) else None)
    in_one_go = ev.train(dataset, epochs=3, **settings)
    np.testing.assert_array_equal(resumed.steps.loss, in_one_go.steps.loss)
    np.testing.assert_array_equal(resumed.params(3), in_one_go.params(3))


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: ev.Dataset(TINY.x, TINY.y, "classification", None, ("0", "1")), "data.name"),
        (lambda: ev.Dataset(TINY.x, TINY.y, b"classification", "moons", ("0", "1")), "data.task"),
        (lambda: ev.Dataset(TINY.x, TINY.y, "classification", "moons", (0, 1)), "data.classes"),
        (lambda: ev.Dataset(TINY.x, TINY.y, "classification", "moons", "01"), "data.classes"),
    ],
    ids=["name-none", "task-bytes", "classes-numbers", "classes-a-string"],
)
def test_a_dataset_that_could_not_be_saved_is_refused_when_it_is_made(make, field):
    with pytest.raises(TypeError, match=rf"^{field} must be"):
        make()


def test_a_dataset_keeps_plain_strings_so_its_checkpoint_reads_back():
    data = DATASETS["numpy-strings"]()
    assert type(data.task) is str and type(data.name) is str and all(type(c) is str for c in data.classes)


class mlp(nn.Linear):  # a class named like a built-in model, on purpose
    pass


def test_a_module_named_like_a_built_in_model_is_refused_before_training_with_a_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "_train_epochs", _must_not_train)
    with pytest.raises(ValueError, match=r"^model's class is called 'mlp'.*built-in model"):
        ev.train(TINY, model=mlp(2, 2), checkpoint=str(tmp_path / "run.pt"), **SMALL)
    assert not (tmp_path / "run.pt").exists()


# --- 3: the path passes the check, then saving fails after an epoch ------------------------------------


def test_a_name_whose_temporary_file_would_be_too_long_is_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "_train_epochs", _must_not_train)
    longest = os.pathconf(tmp_path, "PC_NAME_MAX")
    name = "r" * (longest - 3) + ".pt"  # fits the file system; `.NAME.PID.xxxxxxxx.tmp` does not
    with pytest.raises(ValueError, match=rf"^checkpoint=.* too long .* at most {longest}"):
        ev.train(TINY, checkpoint=str(tmp_path / name), **SMALL)
    with pytest.raises(ValueError, match=r"too long"):
        ev.train(TINY, checkpoint=str(tmp_path / ("d" * (longest + 1)) / "run.pt"), **SMALL)  # a folder to create


def test_a_name_that_fits_with_its_temporary_file_saves(tmp_path):
    room = os.pathconf(tmp_path, "PC_NAME_MAX") - len(checkpoint.temporary_prefix("")) - len("xxxxxxxx.tmp")
    run = ev.train(TINY, checkpoint=str(tmp_path / ("r" * (room - 3) + ".pt")), **SMALL)
    assert run.completed_epochs == 1 and ev.resume(run.config.checkpoint, 2).completed_epochs == 2


def test_a_relative_checkpoint_path_is_made_absolute_before_training(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    run = ev.train(TINY, epochs=2, batch_size=8, checkpoint="run.pt", on_epoch=lambda run: os.chdir(tmp_path / "b"))
    assert run.config.checkpoint == str(tmp_path / "a" / "run.pt")
    assert not (tmp_path / "b" / "run.pt").exists()
    assert checkpoint.load(tmp_path / "a" / "run.pt")["run"].completed_epochs == 2


@pytest.mark.parametrize("failing_save", [1, 2])
def test_a_full_disk_keeps_the_run_and_says_which_epoch_was_saved(tmp_path, monkeypatch, failing_save):
    calls, real_fsync = [], os.fsync

    def fsync(descriptor):
        calls.append(descriptor)
        if len(calls) == failing_save:
            raise OSError(28, "No space left on device")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "run.pt"
    with pytest.raises(ev.SaveError) as error:
        ev.train(TINY, epochs=4, batch_size=8, checkpoint=str(path))
    message = str(error.value)
    assert f"after epoch {failing_save}" in message and "No space left on device" in message
    assert ("no epoch was saved" in message) if failing_save == 1 else ("it holds epoch 1" in message)
    assert isinstance(error.value, OSError) and error.value.saved_epoch == failing_save - 1
    kept = error.value.run
    assert kept.completed_epochs == failing_save
    assert not [entry for entry in os.listdir(tmp_path) if entry.endswith(".tmp")]  # no half-written file left
    monkeypatch.setattr(os, "fsync", real_fsync)
    carried_on = ev.resume(kept, 4)
    np.testing.assert_array_equal(carried_on.steps.loss, ev.train(TINY, epochs=4, batch_size=8).steps.loss)
    assert checkpoint.load(path)["run"].completed_epochs == 4


# --- 4: a float64 module with precision="float64" -----------------------------------------------------


def test_a_float64_module_trains_with_precision_float64():
    module = nn.Linear(2, 2).double()
    run = ev.train(TINY, model=module, precision="float64", **SMALL)
    assert run.completed_epochs == 1 and next(run.model.parameters()).dtype == torch.float64
    np.testing.assert_array_equal(run.params(1, "start"), torch.cat([module.weight.reshape(-1), module.bias]).detach())


def test_a_float64_module_is_refused_by_precision_when_float32_would_round_it(monkeypatch):
    monkeypatch.setattr(training, "_train_epochs", _must_not_train)
    with pytest.raises(ValueError, match=r"^model Linear holds float64 parameters, .*precision='float32'"):
        ev.train(TINY, model=nn.Linear(2, 2).double(), **SMALL)


# --- 5: your own module, refused before training instead of failing inside it -------------------------


class _Detached(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 2)

    def forward(self, x):
        return self.layer(x).detach()


class _Integer(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 2)

    def forward(self, x):
        return self.layer(x).round().long()


class _OneRowOnly(nn.Module):
    """Right for one sample, wrong for a batch: it always returns a single row."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 2)

    def forward(self, x):
        return self.layer(x)[:1]


def _frozen():
    return nn.Linear(2, 2).requires_grad_(False)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_frozen, "all 2 are frozen"),
        (_Detached, "depends on no parameter that trains"),
        (_Integer, "returns int64 numbers"),
        (lambda: torch.jit.script(nn.Linear(2, 2)), "TorchScript"),
        (_OneRowOnly, "for a batch of 5 sample(s) it returned shape (1, 2)"),
    ],
    ids=["all-frozen", "detached", "integer", "torchscript", "one-row-for-a-batch"],
)
def test_a_module_that_would_fail_mid_training_is_refused_before_training(monkeypatch, make, says):
    monkeypatch.setattr(training, "_train_epochs", _must_not_train)
    with pytest.raises(ValueError, match=r"^model ") as error:
        ev.train(TINY, model=make(), **SMALL)
    assert says in str(error.value)


# --- 8: train_parallel's workers, folders and port -----------------------------------------------------


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # it ended while we looked
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_end_when_their_parent_is_killed_and_the_next_call_removes_its_folder(tmp_path):
    script = textwrap.dedent("""
        import sys, epochviz as ev
        def started(run):
            print("epoch", flush=True)
        ev.train_parallel("moons", workers=2, epochs=2000, batch_size=16, on_epoch=started)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path(ev.__file__).parent.parent)})  # fmt: skip
    try:
        assert parent.stdout.readline().strip() == "epoch"  # the workers are training
        workers = _children(parent.pid)
        folders = list(Path(tempfile.gettempdir()).glob(f"epochviz-parallel-{parent.pid}-*"))
        assert len(workers) == 2 and len(folders) == 1
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, workers)), "a worker went on training after its parent was killed"
    assert folders[0].exists()
    ev.train_parallel("moons", workers=1, epochs=1)
    assert not folders[0].exists()


def test_a_killed_worker_is_reported_by_its_signals_name(monkeypatch):
    started, real_start = [], parallel._start_worker
    monkeypatch.setattr(parallel, "_start_worker", lambda rank, folder: started.append(real_start(rank, folder))
                        or started[-1])  # fmt: skip

    def kill_worker_1(run):
        os.kill(started[1].pid, signal.SIGKILL)

    with pytest.raises(RuntimeError, match=r"worker 1 was killed by SIGKILL \(signal 9\)"):
        ev.train_parallel("moons", workers=2, epochs=3, batch_size=16, on_epoch=kill_worker_1)


def test_the_port_the_workers_meet_on_is_held_before_the_first_worker_starts(monkeypatch):
    import socket

    held, real_start = [], parallel._start_worker

    def start(rank, folder):
        port = torch.load(folder / "settings.pt", weights_only=False)["port"]
        with socket.socket() as other, pytest.raises(OSError):  # another program cannot take it now
            other.bind(("127.0.0.1", port))
        held.append(port)
        return real_start(rank, folder)

    monkeypatch.setattr(parallel, "_start_worker", start)
    assert ev.train_parallel("moons", workers=2, epochs=1).completed_epochs == 1
    assert len(held) == 2


# --- 9: stop_and_resume on a run that diverges ---------------------------------------------------------


@pytest.mark.parametrize(("lr", "batch_size", "epoch"), [(5.0, 8, 1), (3.0, 32, 4)])
def test_stop_and_resume_says_the_run_diverged_and_when(lr, batch_size, epoch):
    with pytest.raises(ValueError, match=rf"the run diverged at epoch {epoch}\b"):
        ev.stop_and_resume("line", model="linear", lr=lr, batch_size=batch_size, stop_after=3, epochs=6)


# --- 10: messages that name the wrong argument or number ----------------------------------------------


def test_cross_validate_blames_test_fraction_with_its_value():
    with pytest.raises(ValueError, match=r"^test_fraction=0\.99 of 400 samples leaves 4 for k=5 folds"):
        ev.cross_validate("moons", test_fraction=0.99, epochs=1)
    with pytest.raises(ValueError, match=r"^test_fraction=0\.999 of 400 samples leaves nothing to train on"):
        ev.cross_validate("moons", test_fraction=0.999, epochs=1)


def test_train_parallel_reports_the_batch_size_it_was_given():
    with pytest.raises(ValueError, match=r"^batch_size must be from 1 to 1,250,000; got 5000000\."):
        ev.train_parallel("moons", workers=8, batch_size=5_000_000)


def test_max_batch_size_returns_only_what_train_accepts(monkeypatch):
    largest = ev.max_batch_size("mlp", TINY, budget_mb=1e8)
    assert largest == 10_000_000  # the budget would fit hundreds of billions; train takes at most this many
    monkeypatch.setattr(training, "_train_epochs", lambda run, *rest: run)
    ev.train(TINY, batch_size=largest, epochs=1, memory_budget_mb=1e8)  # accepted, not refused


# --- 11: Run methods check their epoch -----------------------------------------------------------------


@pytest.fixture(scope="module")
def two_epochs():
    return ev.train(TINY, epochs=2, batch_size=8)


@pytest.mark.parametrize("epoch", [1.5, 1.0, "1", True, None, np.float64(2.0)])
@pytest.mark.parametrize("method", ["params", "predict", "sample_order"])
def test_an_epoch_that_is_not_a_whole_number_is_refused_by_name(two_epochs, method, epoch):
    call = {"params": lambda: two_epochs.params(epoch), "predict": lambda: two_epochs.predict([[0.0, 0.0]], epoch),
            "sample_order": lambda: two_epochs.sample_order(epoch)}[method]  # fmt: skip
    with pytest.raises(TypeError, match=rf"^epoch must be a whole number .*got {re.escape(repr(epoch))}"):
        call()


@pytest.mark.parametrize("epoch", [0, -1, 3, 99, 10**30])
@pytest.mark.parametrize("method", ["params", "predict", "sample_order"])
def test_an_epoch_the_run_does_not_have_is_refused(two_epochs, method, epoch):
    call = {"params": lambda: two_epochs.params(epoch), "predict": lambda: two_epochs.predict([[0.0, 0.0]], epoch),
            "sample_order": lambda: two_epochs.sample_order(epoch)}[method]  # fmt: skip
    with pytest.raises(ValueError, match=rf"^epoch must be from 1 to 2 for this run; got {epoch}\."):
        call()


def test_whole_epochs_of_any_integer_type_still_work(two_epochs):
    np.testing.assert_array_equal(two_epochs.params(np.int64(2)), two_epochs.params(2))
    np.testing.assert_array_equal(two_epochs.sample_order(np.int32(1)), two_epochs.sample_order(1))


# --- 12: tensors and arrays as inputs ------------------------------------------------------------------


def test_tensors_that_require_grad_are_read_by_their_values(two_epochs):
    x, y = TINY.x.clone().requires_grad_(True), TINY.y.float().requires_grad_(True)
    data = ev.from_arrays(x, y, task="classification")
    assert torch.equal(data.x, TINY.x) and not data.x.requires_grad
    np.testing.assert_array_equal(two_epochs.predict(x[:3], 2), two_epochs.predict(TINY.x[:3].numpy(), 2))


def test_bfloat16_labels_are_read_exactly_as_float32_ones():
    labels = torch.tensor([0.0, 1.0, 2.0, 1.0])
    data = ev.from_arrays(np.zeros((4, 2)), labels.to(torch.bfloat16), task="classification")
    assert data.y.tolist() == [0, 1, 2, 1]


@pytest.mark.parametrize(
    ("x", "y", "argument", "says"),
    [
        (np.ones((4, 2)) + 1j, [0, 1, 0, 1], "x", "complex numbers"),
        (torch.ones(4, 2, dtype=torch.complex64), [0, 1, 0, 1], "x", "complex numbers"),
        (np.ones((4, 2)), np.array([0, 1, 0, 1]) + 0j, "y", "complex numbers"),
        (torch.ones(4, 2, device="meta"), [0, 1, 0, 1], "x", "meta tensor"),
        (torch.eye(4)[:, :2].to_sparse(), [0, 1, 0, 1], "x", "sparse_coo tensor"),
        (np.ones((4, 2)), torch.tensor([0, 1, 0, 1]).to_sparse(), "y", "sparse_coo tensor"),
    ],
    ids=["complex-array", "complex-tensor", "complex-y", "meta", "sparse", "sparse-y"],
)
def test_inputs_without_plain_real_numbers_are_refused_by_name(x, y, argument, says):
    with pytest.raises(TypeError, match=rf"^{argument} (is|holds) .*{says}"):
        ev.from_arrays(x, y)


@pytest.mark.parametrize(
    "x",
    [np.ones((3, 2)) + 1j, torch.ones(3, 2, device="meta"), torch.eye(3)[:, :2].to_sparse(), [["a", "b"]]],
    ids=["complex", "meta", "sparse", "strings"],
)
def test_predict_refuses_inputs_without_plain_real_numbers_by_name(two_epochs, x):
    with pytest.raises(TypeError, match=r"^x "):
        two_epochs.predict(x, 1)


def test_data_without_features_is_refused():
    with pytest.raises(ValueError, match=r"data\.x has no features.*\(10, 0\)"):
        ev.from_arrays(np.zeros((10, 0)), np.arange(10) % 2)
