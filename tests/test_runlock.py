"""One training process per run directory: a second one is refused before it reads, repairs or
deletes anything, and a killed holder leaves no stale lock (dpgkit.runlock)."""

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_bad_input import status_and_error

import dpgkit
from dpgkit import runlock
from dpgkit.runlock import RunInUse, RunLock

pytestmark = pytest.mark.skipif(runlock.fcntl is None, reason="this OS has no flock: nothing "
                                "is held (Windows)")
HOLD = ("import sys, time; from pathlib import Path; from dpgkit.runlock import RunLock; "
        "lock = RunLock(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)")


@pytest.fixture
def run(finished_run, tmp_path) -> Path:
    return Path(shutil.copytree(finished_run, tmp_path / "run"))


def hold_elsewhere(run_dir: Path) -> subprocess.Popen:
    """Another process holding ``run_dir``, as a training would."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_run_trained_elsewhere_is_neither_resumed_nor_overwritten(run, capsys):
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    holder = hold_elsewhere(run)
    try:
        status, err = status_and_error(capsys, "train", "--resume", str(run), "--steps", "400")
        assert status == 2 and "is being trained by another process" in err
        status, err = status_and_error(capsys, "train", "--out", str(run), "--overwrite",
                                       "--steps", "100")
        assert status == 2 and "is being trained by another process" in err
        assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # nothing touched
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    RunLock(run).release()  # a killed holder leaves nothing behind


def test_a_training_holds_its_run_until_it_closes(run):
    trainer = dpgkit.DDPG.resume(run).trainer
    assert trainer.run_lock.held
    with pytest.raises(RunInUse, match="or by another model in this one"):
        RunLock(run)
    trainer.close()
    RunLock(run).release()


def test_an_idle_model_lets_its_run_go_and_holds_it_again_to_learn(run):
    model = dpgkit.DDPG.resume(run).learn(additional_steps=50)
    assert not model.trainer.run_lock.held  # learn() ended: anyone may resume the run now
    other = RunLock(run)
    with pytest.raises(RunInUse):
        model.learn(additional_steps=50)
    other.release()
    model.learn(additional_steps=50)
    assert model.env_steps == 400


def test_a_file_system_without_flock_holds_nothing_and_trains_on(run, monkeypatch):
    """NFS may refuse a flock on a directory (EBADF, ENOLCK): that is no other process."""
    def refuse(fd, operation):
        raise OSError(9, "Bad file descriptor")

    monkeypatch.setattr(runlock.fcntl, "flock", refuse)
    assert not RunLock(run).held
    assert dpgkit.DDPG.resume(run).learn(additional_steps=50).env_steps == 350
