"""A hostile tester against checkpoints: bad paths, damaged files, edited settings, killed saves, wrong models.

Each family of inputs must end in a clear error before any training, never in a traceback from deep
inside torch, a crash of the interpreter, or a file that loads with something silently changed.
"""

import copy
import math
import os
import signal
import subprocess
import sys
from dataclasses import fields

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import epochviz as ev
from epochviz import checkpoint

TINY = ev.moons(n=40, seed=0)
SMALL = {"epochs": 1, "batch_size": 8}
ADAM = {"optimizer": "adam", "lr": 0.01}  # an optimizer with state to damage
STATE = ev.train(TINY, **SMALL, **ADAM).to_state()  # what a checkpoint's "run" entry holds, to name its parts
WEIGHTS = list(ev.mlp(2, 2).state_dict())


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A real checkpoint after one epoch of Adam, and its bytes."""
    path = tmp_path_factory.mktemp("good") / "run.pt"
    ev.train(TINY, checkpoint=path, **SMALL, **ADAM)
    return path


def _never_called(run):
    raise AssertionError("an epoch trained although its checkpoint path was refused")


# --- 11: the checkpoint path is checked before the first epoch ------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        lambda folder: "",
        lambda folder: "   ",
        lambda folder: str(folder),  # an existing folder
        lambda folder: folder,  # the same, as a Path
        lambda folder: folder / "notes.txt" / "run.pt",  # its "folder" is a file
        lambda folder: folder / "notes.txt" / "deeper" / "run.pt",  # a file further up the way
        lambda folder: str(folder) + "/",
    ],
    ids=["empty", "blank", "folder", "folder-path", "parent-is-a-file", "ancestor-is-a-file", "trailing-slash"],
)
def test_a_checkpoint_path_that_cannot_be_written_is_refused_before_training(tmp_path, monkeypatch, where):
    monkeypatch.chdir(tmp_path)  # where a relative name would land
    (tmp_path / "notes.txt").write_text("not a folder")
    before = sorted(tmp_path.iterdir())
    with pytest.raises(ValueError, match=r"^checkpoint"):
        ev.train(TINY, checkpoint=where(tmp_path), on_epoch=_never_called, **SMALL)
    assert sorted(tmp_path.iterdir()) == before  # nothing written, not even a temporary file


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions that bind the user")
def test_a_checkpoint_in_a_read_only_folder_is_refused_before_training(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ValueError, match=r"^checkpoint=.*cannot be written"):
            ev.train(TINY, checkpoint=locked / "sub" / "run.pt", on_epoch=_never_called, **SMALL)
    finally:
        locked.chmod(0o700)


def test_a_checkpoint_path_with_a_tilde_lands_in_the_home_folder(tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    run = ev.train(TINY, checkpoint="~/runs/c.pt", **SMALL)
    assert (home / "runs" / "c.pt").is_file() and not (work / "~").exists()
    assert run.config.checkpoint == str(home / "runs" / "c.pt")
    assert ev.resume("~/runs/c.pt", epochs=2).config.checkpoint == str(home / "runs" / "c.pt")
    assert ev.resume(home / "runs" / "c.pt", epochs=3).completed_epochs == 3  # the resumed run saved there too
    assert not (work / "~").exists()


# --- 10: a flipped bit anywhere is refused --------------------------------------------------------


def _refused(path, epochs=2):
    """resume must raise CheckpointError, and nothing else; it must not train."""
    with pytest.raises(ev.CheckpointError, match=r"bad\.pt"):
        ev.resume(path, epochs=epochs, on_epoch=_never_called)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(0, 1, exclude_max=True), mask=st.integers(1, 255))
def test_any_changed_byte_of_a_checkpoint_is_refused(good, tmp_path, where, mask):
    raw = bytearray(good.read_bytes())
    raw[int(where * len(raw))] ^= mask  # mask 1, 2, 4 … flips a single bit
    bad = tmp_path / "bad.pt"
    bad.write_bytes(raw)
    _refused(bad)


def test_every_bit_of_the_header_is_covered(good, tmp_path):
    raw = good.read_bytes()
    bad = tmp_path / "bad.pt"
    for bit in range(8 * (raw.index(b"\n") + 1)):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << bit % 8
        bad.write_bytes(flipped)
        with pytest.raises(ev.CheckpointError, match=r"bad\.pt"):
            checkpoint.load(bad)
    assert checkpoint.load(good)["run"].completed_epochs == 1  # the untouched file still loads


def test_a_checkpoint_of_the_old_version_is_refused_by_its_version(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"format": checkpoint.FORMAT, "version": 1, "run": {}}, bad)
    with pytest.raises(ev.CheckpointError, match=r"bad\.pt.*version 1"):
        ev.resume(bad, epochs=2)


# --- 10: structurally damaged contents, written with a valid checksum ------------------------------


def _at(contents, keys):
    for key in keys:
        contents = contents[key]
    return contents


def _removed(*keys):
    def damage(contents):
        del _at(contents, keys[:-1])[keys[-1]]

    return damage


def _replaced(*keys, by):
    def damage(contents):
        _at(contents, keys[:-1])[keys[-1]] = by(_at(contents, keys))

    return damage


REMOVALS = [
    *[(entry,) for entry in checkpoint.ENTRIES],
    *[("data", name) for name in checkpoint.DATA_FIELDS],
    *[("run", key) for key in STATE],
    *[("run", "config", key) for key in STATE["config"]],
    *[(entry, name) for entry in ("model_state", "initial_weights") for name in WEIGHTS],
    ("optimizer_state", "state"), ("optimizer_state", "param_groups"), ("optimizer_state", "state", 0),
    *[("optimizer_state", "state", 0, key) for key in ("step", "exp_avg", "exp_avg_sq")],
    *[("optimizer_state", "param_groups", 0, key) for key in ("lr", "betas", "eps", "params")],
    ("run", "epoch_rows", 0), ("run", "step_chunks", 0), ("run", "epoch_params", 0),
    *[("run", "epoch_rows", 0, column) for column in ("epoch", "steps", "train_loss", "elapsed_s")],
    *[("run", "step_chunks", 0, column) for column in STATE["step_chunks"][0]],
]  # fmt: skip
SHORTER = lambda tensor: tensor[:-1]  # noqa: E731
WRONG_SHAPES = [
    *[(entry, name) for entry in ("model_state", "initial_weights") for name in WEIGHTS],
    ("optimizer_state", "state", 0, "exp_avg"), ("optimizer_state", "state", 3, "exp_avg_sq"),
    ("data", "y"), ("run", "epoch_params", 0, 1), ("run", "step_chunks", 0, "loss"),
]  # fmt: skip
DAMAGES = {
    **{"no " + ".".join(map(str, keys)): _removed(*keys) for keys in REMOVALS},
    **{"shorter " + ".".join(map(str, keys)): _replaced(*keys, by=SHORTER) for keys in WRONG_SHAPES},
    "a feature fewer": _replaced("data", "x", by=lambda x: x[:, :1].contiguous()),
    "weights of another dtype": _replaced("model_state", WEIGHTS[0], by=lambda w: w.double()),
    "train row out of range": _replaced("run", "train_indices", by=lambda rows: rows + 1000),
    "negative val row": _replaced("run", "val_indices", by=lambda rows: -rows - 1),
    "float row numbers": _replaced("run", "train_indices", by=lambda rows: rows.float()),
    "a row trains and validates": _replaced("run", "val_indices", by=lambda rows: STATE["train_indices"][:1]),
    "an epoch too many": _replaced("run", "epoch_rows", by=lambda rows: rows + rows),
    "epochs below those done": _replaced("run", "config", "epochs", by=lambda epochs: 0),
    "a batch size that does not match the steps": _replaced("run", "config", "batch_size", by=lambda size: 16),
    "another optimizer": _replaced("run", "config", "optimizer", by=lambda name: "momentum"),
    "another lr than its optimizer": _replaced("optimizer_state", "param_groups", 0, "lr", by=lambda lr: math.nan),
    "another model name": _replaced("run", "config", "model", by=lambda name: "linear"),
    "a model name that is not a name": _replaced("run", "config", "model", by=lambda name: "import os"),
    "a device that is not a string": _replaced("run", "config", "device", by=lambda device: 0),
    "an unknown setting": _replaced("run", "config", by=lambda config: {**config, "warp": 9}),
    "a bad reset": _replaced("run", "config", "reset", by=lambda reset: "sometimes"),
    "a data name that is not a string": _replaced("data", "name", by=lambda name: 3),
    "a class name that is not a string": _replaced("data", "classes", by=lambda names: [0, 1]),
    "targets beyond the classes": _replaced("data", "y", by=lambda y: y + 5),
    "diverged at nonsense": _replaced("run", "diverged_at", by=lambda value: ["x"]),
    "a payload that is a list": lambda contents: contents.clear() or contents.update({"run": []}),
    "a generator state of another size": _replaced("generator_state", "state", by=SHORTER),
    "a generator state of floats": _replaced("generator_state", "state", by=lambda state: state.float()),
    "a generator state of an unknown device": _replaced("generator_state", "device", by=lambda device: "tpu"),
    "a generator state that is not a dict": _replaced("generator_state", by=lambda stored: stored["state"]),
}  # fmt: skip


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_checkpoint_is_refused_by_name_before_training(good, tmp_path, damage):
    contents = copy.deepcopy(checkpoint.read(good))
    damage(contents)
    bad = tmp_path / "bad.pt"
    checkpoint.write(bad, contents)
    _refused(bad)


# --- 9: every setting in a file is checked as train checks it -------------------------------------

ODD_SETTINGS = [0, -1, 1, 2, 3, 10**6, 2**70, 0.5, -0.5, 1e-3, math.nan, math.inf, -math.inf, 1e300, True, False,
                None, "", "3", "never", "weights", "adam", [1]]  # fmt: skip
FILE_SETTINGS = [s.name for s in fields(ev.TrainConfig) if s.name not in ("model", "device", "checkpoint")]


@pytest.mark.parametrize("setting", FILE_SETTINGS)
def test_a_setting_train_would_refuse_is_refused_in_a_checkpoint(good, tmp_path, setting):
    """The oracle is TrainConfig: what it refuses as an argument, resume refuses from a file, naming it."""
    stored = checkpoint.read(good)
    config = stored["run"]["config"]
    for value in ODD_SETTINGS:
        bad = tmp_path / "bad.pt"
        checkpoint.write(bad, {**stored, "run": {**stored["run"], "config": {**config, setting: value}}})
        try:
            ev.TrainConfig(**{**config, setting: value, "checkpoint": None})
        except (ValueError, TypeError):
            with pytest.raises(ev.CheckpointError, match=rf"bad\.pt.*{setting}") as refused:
                ev.resume(bad, epochs=2, on_epoch=_never_called)
            assert "Error: " not in str(refused.value), "a setting's check should explain itself"
            continue
        try:  # a setting train accepts either carries on, or does not fit the rest of the file
            assert ev.resume(bad, epochs=2).completed_epochs == 2, (setting, value)
        except ev.CheckpointError as error:
            assert "bad.pt" in str(error)


def test_a_checkpoint_asking_for_a_million_threads_is_refused_not_a_crash(good, tmp_path):
    stored = checkpoint.read(good)
    bad = tmp_path / "bad.pt"
    checkpoint.write(bad, {**stored, "run": {**stored["run"], "config": {**stored["run"]["config"], "threads": 10**6}}})
    with pytest.raises(ev.CheckpointError, match=r"bad\.pt.*threads must be from 1 to 256"):
        ev.resume(bad, epochs=2)


# --- 10: temporary files of a killed save are removed by the next save ----------------------------

KILLED_WHILE_SAVING = """
import os, signal, sys
import epochviz as ev
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # die with the temporary file written, not renamed
ev.train(ev.moons(n=40, seed=0), epochs=1, batch_size=8, checkpoint=sys.argv[1])
"""


def test_the_next_save_removes_what_a_killed_save_left_behind(tmp_path):
    path = tmp_path / "run.pt"
    process = subprocess.Popen([sys.executable, "-c", KILLED_WHILE_SAVING, str(path)])
    try:
        assert process.wait(timeout=300) == -signal.SIGKILL
    finally:
        process.kill()
        process.wait()
    orphans = [p.name for p in tmp_path.iterdir()]
    assert not path.exists() and len(orphans) == 1 and orphans[0].startswith(f".run.pt.{process.pid}.")
    alive = tmp_path / f".run.pt.{os.getpid()}.writing.tmp"  # a save still under way in a live process
    others = tmp_path / f".other.pt.{process.pid}.leftover.tmp"  # a leftover of another checkpoint
    for kept in (alive, others):
        kept.write_bytes(b"partial")
    ev.train(TINY, checkpoint=path, **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, others.name, "run.pt"])
    assert checkpoint.load(path)["run"].completed_epochs == 1


# --- 7: resume's own arguments are checked before it trains ---------------------------------------

WRONG_MODELS = {
    "a string": "bogus",
    "a model name": "mlp",
    "a number": 5,
    "another width": ev.mlp(2, 2, hidden=(8, 8)),
    "another depth": ev.mlp(2, 2, hidden=(32,)),
    "another input size": ev.mlp(3, 2),
    "a linear layer": torch.nn.Linear(2, 2),
    "a double-precision copy": ev.mlp(2, 2).double(),
}


@pytest.mark.parametrize("model", WRONG_MODELS.values(), ids=WRONG_MODELS.keys())
def test_resuming_with_a_model_of_another_architecture_is_refused_by_name(good, model):
    before = good.read_bytes()
    with pytest.raises((ValueError, TypeError), match=r"^model") as refused:
        ev.resume(good, epochs=2, model=model, on_epoch=_never_called)
    assert not isinstance(refused.value, ev.CheckpointError)  # the file is fine; the argument is not
    assert good.read_bytes() == before


def test_a_custom_module_resumes_only_with_one_of_its_architecture(tmp_path):
    path = tmp_path / "custom.pt"
    ev.train(TINY, model=ev.mlp(2, 2, hidden=(4,)), checkpoint=path, **SMALL)
    for wrong in (None, ev.mlp(2, 2, hidden=(5,)), ev.mlp(2, 2)):
        with pytest.raises(ValueError, match="model"):
            ev.resume(path, epochs=2, model=wrong, on_epoch=_never_called)
    assert ev.resume(path, epochs=2, model=ev.mlp(2, 2, hidden=(4,), seed=9)).completed_epochs == 2


OTHER_ARGUMENTS = [("epochs", 0), ("epochs", "2"), ("epochs", 2.5), ("epochs", 10**9), ("device", "gpu"),
                   ("device", 0), ("on_epoch", 5)]  # fmt: skip


@pytest.mark.parametrize(("argument", "value"), OTHER_ARGUMENTS)
def test_resume_refuses_its_other_arguments_by_name(good, argument, value):
    with pytest.raises((ValueError, TypeError), match=argument):
        ev.resume(good, **{"epochs": 2, "on_epoch": _never_called, argument: value})


def test_a_run_in_memory_refuses_a_model_it_would_ignore():
    run = ev.train(TINY, **SMALL)
    with pytest.raises(ValueError, match=r"^model"):
        ev.resume(run, epochs=2, model=ev.mlp(2, 2))
    assert run.completed_epochs == 1
