"""Stopping and resuming is the same training; bad files are refused, not executed."""

import hashlib
import io
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import epochviz as ev
from epochviz import checkpoint
from epochviz.policies import RESETS

ARGS = {"optimizer": "adam", "lr": 0.01, "batch_size": 16, "seed": 2}


def _assert_same_training(left, right):
    np.testing.assert_array_equal(left.steps.loss, right.steps.loss)
    for epoch in range(1, right.completed_epochs + 1):
        np.testing.assert_array_equal(left.params(epoch, "end"), right.params(epoch, "end"))
    assert left.epochs.drop(columns="elapsed_s").equals(right.epochs.drop(columns="elapsed_s"))


def test_stopping_after_3_and_resuming_to_6_is_the_uninterrupted_run(tmp_path):
    path = tmp_path / "run.pt"
    ev.train("moons", epochs=3, checkpoint=path, **ARGS)
    resumed = ev.resume(path, epochs=6)
    _assert_same_training(resumed, ev.train("moons", epochs=6, **ARGS))
    assert resumed.epochs.elapsed_s.is_monotonic_increasing
    assert ev.resume(path, epochs=6).completed_epochs == 6  # the checkpoint followed the resumed run


@pytest.mark.parametrize("reset", RESETS)
def test_a_run_in_memory_carries_on_in_place(reset):
    run = ev.train("moons", epochs=2, reset=reset, optimizer="momentum")
    assert ev.resume(run, epochs=5) is run
    _assert_same_training(run, ev.train("moons", epochs=5, reset=reset, optimizer="momentum"))


def test_views_and_diverged_runs_cannot_resume():
    with pytest.raises(ValueError, match="view"):
        ev.resume(ev.train("moons", epochs=3).first(2), epochs=4)
    with pytest.raises(ValueError, match="diverged"):
        ev.resume(ev.train("moons", epochs=3, lr=1e6), epochs=4)
    with pytest.raises(ValueError, match="epochs must be from 3 to"):
        ev.resume(ev.train("moons", epochs=3), epochs=2)


def test_the_file_holds_only_plain_tensors_numbers_and_strings(tmp_path):
    path = tmp_path / "run.pt"
    ev.train("digits", epochs=1, checkpoint=path)
    header, payload = path.read_bytes().split(b"\n", 1)
    assert header.split()[:2] == [b"epochviz-checkpoint", str(checkpoint.VERSION).encode()]
    assert header.split()[2] == b"sha256:" + hashlib.sha256(payload).hexdigest().encode()
    contents = torch.load(io.BytesIO(payload), weights_only=True)
    assert contents["run"]["config"]["epochs"] == 1


@pytest.mark.parametrize(
    "write",
    [
        lambda path, good: path.write_bytes(good[: len(good) // 2]),  # truncated
        lambda path, good: path.write_bytes(good[:100] + b"\x00" * 50 + good[150:]),  # corrupted
        lambda path, good: path.write_text("not a checkpoint"),  # unrelated text
        lambda path, good: torch.save({"weights": torch.zeros(3)}, path),  # someone else's torch file
    ],
    ids=["truncated", "corrupted", "text", "foreign"],
)
def test_a_bad_file_is_refused_by_name_and_left_alone(tmp_path, write):
    good = tmp_path / "good.pt"
    ev.train("moons", epochs=1, checkpoint=good)
    bad = tmp_path / "bad.pt"
    write(bad, good.read_bytes())
    before = bad.read_bytes()
    with pytest.raises(ev.CheckpointError, match=r"bad\.pt"):
        ev.resume(bad, epochs=3)
    assert bad.read_bytes() == before


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": "epochviz-checkpoint", "payload": _Exploit()}))
    with pytest.raises(ev.CheckpointError):
        ev.resume(evil, epochs=2)
    assert not (tmp_path / "pwned").exists()


def test_a_crash_while_writing_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    run = ev.train("moons", epochs=2, checkpoint=path)
    before = path.read_bytes()

    def crash(contents, file):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ev.resume(run, epochs=3)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temporary file left behind
    monkeypatch.undo()
    assert ev.resume(path, epochs=3).completed_epochs == 3


KEEP_SAVING = """
import sys, epochviz as ev
ev.train("digits", epochs=500, batch_size=64, track_weights=True, checkpoint=sys.argv[1])  # 160 MB of weights at most
"""


@pytest.mark.parametrize("delay", [0.05, 0.37])
def test_a_process_killed_while_saving_leaves_a_loadable_checkpoint(tmp_path, delay):
    """SIGKILL a training that saves a large checkpoint every epoch, at moments unrelated to its saves."""
    path = tmp_path / "run.pt"
    process = subprocess.Popen([sys.executable, "-c", KEEP_SAVING, str(path)])
    try:
        deadline = time.monotonic() + 120
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert path.exists(), "the training never saved a checkpoint"
        time.sleep(delay)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    resumed = ev.resume(path, epochs=checkpoint.load(path)["run"].completed_epochs + 1)
    assert resumed.completed_epochs >= 2 and np.isfinite(resumed.steps.loss).all()


# --- dropout: torch's generator is seeded by train, carried across epochs and stored in the checkpoint ------------

DROPOUT = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(16, 2))
DROPOUT_ARGS = {"model": DROPOUT, "optimizer": "momentum", "lr": 0.05, "batch_size": 16, "device": "cpu"}


def test_same_arguments_give_the_same_dropout_run_whatever_the_callers_generator_holds():
    torch.manual_seed(1)
    first = ev.train("moons", epochs=3, **DROPOUT_ARGS)
    torch.manual_seed(2)
    before = torch.get_rng_state()
    _assert_same_training(ev.train("moons", epochs=3, **DROPOUT_ARGS), first)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's generator carries on as if nothing trained


@pytest.mark.parametrize("reset", RESETS)
def test_a_dropout_run_resumed_from_its_checkpoint_or_in_memory_is_the_uninterrupted_run(tmp_path, reset):
    args = {**DROPOUT_ARGS, "reset": reset}
    path = tmp_path / "dropout.pt"
    in_memory = ev.train("moons", epochs=3, checkpoint=path, **args)
    torch.manual_seed(123)  # what the caller's generator holds must not matter to the resumed run
    before = torch.get_rng_state()
    from_file = ev.resume(path, epochs=6, model=DROPOUT, device="cpu")
    assert torch.equal(torch.get_rng_state(), before)
    uninterrupted = ev.train("moons", epochs=6, **args)
    _assert_same_training(from_file, uninterrupted)
    _assert_same_training(ev.resume(in_memory, epochs=6), uninterrupted)


def test_the_checkpoint_holds_the_generator_state_the_last_epoch_left(tmp_path):
    path = tmp_path / "dropout.pt"
    run = ev.train("moons", epochs=2, checkpoint=path, **DROPOUT_ARGS)
    stored = checkpoint.read(path)["generator_state"]
    assert stored["device"] == "cpu"
    assert torch.equal(stored["state"], run.training_state.generator_state)
    assert not torch.equal(stored["state"], torch.Generator().manual_seed(0).get_state())  # dropout drew from it


def test_an_on_epoch_that_draws_random_numbers_does_not_change_the_dropout_run():
    draws = ev.train("moons", epochs=3, on_epoch=lambda run: torch.rand(7), **DROPOUT_ARGS)
    _assert_same_training(draws, ev.train("moons", epochs=3, **DROPOUT_ARGS))


@pytest.mark.parametrize(
    ("leave_out", "args"), [("optimizer_state", {"optimizer": "momentum"}), ("generator_state", DROPOUT_ARGS)]
)
def test_resuming_without_one_piece_of_the_checkpoint_is_another_run(leave_out, args):
    assert ev.stop_and_resume("moons", **args).verdict == "exactly the same"
    without = ev.stop_and_resume("moons", leave_out=leave_out, **args)
    assert without.verdict == "different" and without.loss_difference > 1e-3
    assert f"no {leave_out}" in repr(without)


def test_a_resume_that_leaves_a_piece_out_does_not_overwrite_the_checkpoint(tmp_path):
    path = tmp_path / "run.pt"
    ev.train("moons", epochs=2, checkpoint=path, optimizer="momentum")
    before = path.read_bytes()
    run = ev.resume(path, epochs=4, leave_out="optimizer_state")
    assert run.completed_epochs == 4 and run.config.checkpoint is None
    assert path.read_bytes() == before


def test_leave_out_is_checked_by_name():
    run = ev.train("moons", epochs=1)
    with pytest.raises(ValueError, match=r"^leave_out must be one of 'optimizer_state', 'generator_state'; got 'x'"):
        ev.resume("nowhere.pt", epochs=2, leave_out="x")
    with pytest.raises(ValueError, match=r"^leave_out is only for resuming from a checkpoint file"):
        ev.resume(run, epochs=2, leave_out="optimizer_state")
    with pytest.raises(ValueError, match=r"^stop_after must be from 1 to 5"):
        ev.stop_and_resume("moons", stop_after=6, epochs=6)


# --- a file torch cannot read is refused in one sentence, its cause chained for whoever debugs it --------------


@pytest.mark.parametrize(
    "payload",
    [lambda good: good[: len(good) // 2], lambda good: b"not a torch file", lambda good: b""],
    ids=["half-a-payload", "text", "empty"],
)
def test_a_payload_torch_cannot_read_is_refused_in_one_sentence(tmp_path, payload):
    good = tmp_path / "good.pt"
    ev.train("moons", epochs=1, checkpoint=good)
    body = payload(good.read_bytes().split(b"\n", 1)[1])
    bad = tmp_path / "bad.pt"  # a right header and checksum over a payload torch cannot read
    bad.write_bytes(
        f"{checkpoint.FORMAT} {checkpoint.VERSION} sha256:{hashlib.sha256(body).hexdigest()}\n".encode() + body
    )
    with pytest.raises(ev.CheckpointError, match=r"bad\.pt' is damaged") as refused:
        ev.resume(bad, epochs=2)
    message = str(refused.value)
    assert "Error" not in message and "Errno" not in message and message.count(". ") == 0
    assert refused.value.__cause__ is not None  # torch's own words stay in the chain, not in the sentence
