"""A hostile tester against checkpoints: bad paths, damaged files, edited settings, killed saves, wrong models.

Each family of inputs must end in a clear error before any training, never in a traceback from deep
inside torch, a crash of the interpreter, or a file that loads with something silently changed.
"""

import os

import pytest

import epochviz as ev

TINY = ev.moons(n=40, seed=0)
SMALL = {"epochs": 1, "batch_size": 8}


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
    assert run.config["checkpoint"] == str(home / "runs" / "c.pt")
    assert ev.resume("~/runs/c.pt", epochs=2).config["checkpoint"] == str(home / "runs" / "c.pt")
    assert ev.resume(home / "runs" / "c.pt", epochs=3).completed_epochs == 3  # the resumed run saved there too
    assert not (work / "~").exists()
