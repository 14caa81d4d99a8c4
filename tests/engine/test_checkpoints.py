"""The run folder: nothing in it is unpickled, one run at a time, nothing finished is lost.

Real runs (tiny Fashion-MNIST, the offline EfficientNet-Lite0) and real processes; the feature
cache is shared by the module so most runs only train a probe on cached features.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import tlhub
from tlhub.engine.checkpoints import STAGING_DIR, _load_tree, _rng_state, _save_tree, _set_rng_state
from tlhub.errors import CheckpointError
from tlhub.fileio import LOCK_FILE, lock_folder

from tests.engine.test_trainer import TINY as _TINY, _args

# these tests count epochs of the probe stage: the epoch-by-epoch AdamW probe, not the one-solve default
TINY = dict(_TINY, probe_solver="adamw")

PROBE = dict(TINY, strategy="feature-extraction")  # seconds: a probe on cached features


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("features"))


def _tlhub(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tlhub", *args], capture_output=True, text=True, timeout=timeout)


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (links followed), for 'nothing changed' checks."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != LOCK_FILE}


class _RunsCode:
    """What an attacker plants: unpickling it calls os.mkdir(marker)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


# -- 1. no pickles --------------------------------------------------------------------------------
def test_checkpoints_hold_no_pickles(tmp_path, offline_assets, cache_dir):
    out = tmp_path / "run"
    tlhub.train(**dict(TINY, strategy="lp-ft", probe_epochs=2, epochs=1), output_dir=str(out), cache_dir=cache_dir)
    files = [p for p in (out / "checkpoints").rglob("*") if p.is_file()]
    assert files and {p.suffix for p in files} <= {".safetensors", ".json"}, sorted(p.name for p in files)
    latest = out / "checkpoints" / "latest"
    optimizer = _load_tree(latest / "optimizer.safetensors")
    assert optimizer["optimizer"]["state"] and optimizer["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)


def test_rng_state_round_trips_exactly(tmp_path):
    random.gauss(0, 1), np.random.randn()  # cached Gaussians are part of the state too
    _save_tree(tmp_path / "rng.safetensors", _rng_state())
    draws = lambda: (random.random(), random.gauss(0, 1), np.random.randn(3).tolist(), torch.rand(3).tolist())  # noqa: E731
    expected = draws()
    _set_rng_state(_load_tree(tmp_path / "rng.safetensors"))
    assert draws() == expected


def test_planted_pickle_is_never_loaded(tmp_path, offline_assets, cache_dir):
    out = tmp_path / "shared-run"
    cfg = dict(PROBE, cache_dir=cache_dir)
    tlhub.train(**cfg, output_dir=str(out))
    latest = out / "checkpoints" / "latest"
    marker = tmp_path / "code-ran"
    (latest / "rng-0.safetensors").unlink()  # as a checkpoint written by an older tlhub would be
    (latest / "rng-0.pt").write_bytes(pickle.dumps(_RunsCode(marker)))
    before = _snapshot(out)

    proc = _tlhub("train", *_args(cfg), "--output-dir", str(out))
    assert not marker.exists(), "the planted pickle ran"
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "rng-0.pt" in proc.stderr and "fix: start over here with --no-resume" in proc.stderr
    assert _snapshot(out) == before  # and the run folder is left as it was

    # the plant is a real exploit: unpickling it does run code
    pickle.loads((latest / "rng-0.pt").read_bytes())
    assert marker.is_dir()


def test_a_corrupt_checkpoint_file_is_a_checkpoint_error(tmp_path, offline_assets, cache_dir):
    out = tmp_path / "run"
    cfg = dict(PROBE, cache_dir=cache_dir)
    tlhub.train(**cfg, output_dir=str(out))
    (out / "checkpoints" / "latest" / "rng-0.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="rng-0.safetensors cannot be read") as err:
        tlhub.train(**cfg, output_dir=str(out))
    assert "--no-resume" in err.value.fix


# -- 3. one run per output folder -------------------------------------------------------------------
def test_a_second_run_into_a_busy_folder_fails_clearly(tmp_path, offline_assets, cache_dir):
    out = tmp_path / "run"
    cfg = dict(TINY, strategy="fine-tune", epochs=50, warmup_epochs=0.0, cache_dir=cache_dir)
    first = subprocess.Popen([sys.executable, "-m", "tlhub", "train", *_args(cfg), "--output-dir", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and first.poll() is None:
            if (out / LOCK_FILE).is_file() and (out / LOCK_FILE).read_text().strip() == str(first.pid):
                break
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before it held the folder"
        second = _tlhub("train", *_args(cfg), "--output-dir", str(out))
        assert first.poll() is None, "the first run must still be running"
        assert second.returncode == 2
        assert "Traceback" not in second.stderr
        assert f"{out} is in use by another tlhub process (PID {first.pid})" in second.stderr
        assert "fix:" in second.stderr
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # kill -9: the lock dies with it
        first.wait()
    # the stale lock file stays, holding the dead PID, and blocks nothing (the kill/resume test of
    # test_trainer.py also resumes a whole run after kill -9)
    assert (out / LOCK_FILE).read_text().strip() == str(first.pid)
    with lock_folder(out):
        assert (out / LOCK_FILE).read_text().strip() == str(os.getpid())


# -- 4. a finished model is replaced only when asked, and only once the new one is complete ---------
def test_a_finished_model_is_replaced_only_with_overwrite(tmp_path, offline_assets, cache_dir):
    out = tmp_path / "run"
    cfg = dict(PROBE, cache_dir=cache_dir)
    tlhub.train(**cfg, output_dir=str(out))
    (out / "notes.txt").write_text("mine")
    before = _snapshot(out / "model")

    import shutil

    shutil.rmtree(out / "checkpoints")  # nothing to resume: a new run would start from scratch
    for changes in ({"probe_lr": 0.01}, {"resume": False}):
        with pytest.raises(CheckpointError, match="already holds a finished model") as err:
            tlhub.train(**dict(cfg, **changes), output_dir=str(out))
        assert "--overwrite" in err.value.fix
        assert _snapshot(out / "model") == before

    result = tlhub.train(**dict(cfg, probe_lr=0.01), output_dir=str(out), overwrite=True)
    record = json.loads((out / "model" / "tlhub.json").read_text())
    assert record["config"]["probe_lr"] == 0.01 and result.model_dir == out / "model"
    assert "probe_lr: 0.01" in (out / "config.yaml").read_text()
    assert (out / "checkpoints" / "latest").is_symlink() and not (out / STAGING_DIR).exists()
    assert (out / "notes.txt").read_text() == "mine"  # files that are not the run's stay


def test_other_settings_need_overwrite_and_keep_the_old_run_until_done(tmp_path, offline_assets, cache_dir):
    out = tmp_path / "run"
    cfg = dict(PROBE, cache_dir=cache_dir)
    tlhub.train(**cfg, output_dir=str(out))
    with pytest.raises(CheckpointError, match="different settings") as err:
        tlhub.train(**dict(cfg, probe_lr=0.01), output_dir=str(out))
    assert "--overwrite" in err.value.fix and "--resume false" not in err.value.fix


def test_a_crashed_no_resume_run_loses_nothing_and_resumes(tmp_path, offline_assets, cache_dir, capsys):
    out = tmp_path / "run"
    old_cfg = dict(PROBE, cache_dir=cache_dir)
    tlhub.train(**old_cfg, output_dir=str(out))
    before = _snapshot(out)

    # another run over it, killed -9 after its first fine-tuning epoch
    new_cfg = dict(TINY, strategy="lp-ft", probe_epochs=2, epochs=3, cache_dir=cache_dir)
    cmd = [sys.executable, "-m", "tlhub", "train", *_args(new_cfg), "--no-resume", "--overwrite", "--output-dir", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    staged = out / STAGING_DIR / "checkpoints" / "latest"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if staged.is_symlink() and os.readlink(staged) >= "epoch-0003":
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    outside_staging = {k: v for k, v in _snapshot(out).items() if not k.startswith(STAGING_DIR)}
    assert outside_staging == before  # the old run is whole: model, checkpoints, config.yaml

    # the old run's own settings still resume it; the new command with --overwrite resumes the new run
    tlhub.train(**old_cfg, output_dir=str(out))
    assert "resuming  from epoch-0003" in capsys.readouterr().out
    assert _snapshot(out / "model").keys() == {k[len("model/"):] for k in before if k.startswith("model/")}
    capsys.readouterr()
    result = tlhub.train(**new_cfg, output_dir=str(out), overwrite=True)
    printed = capsys.readouterr().out
    assert re.search(r"resuming  from epoch-000[34] \(stage 2", printed), [l for l in printed.splitlines() if l.startswith(("resum", "replac"))]
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4, 5]
    assert json.loads((out / "model" / "tlhub.json").read_text())["strategy"] == "lp-ft"
    assert "strategy: lp-ft" in (out / "config.yaml").read_text()
    assert os.readlink(out / "checkpoints" / "latest") == "epoch-0005"
    assert not (out / STAGING_DIR).exists()
