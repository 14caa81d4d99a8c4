"""Epoch checkpoints of a training run: written atomically, resumed exactly.

A run killed at any moment leaves the previous checkpoint whole; ``tlhub train`` on the same
output folder and config picks up where it stopped, down to the random-number generators.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tlhub.engine.config import TrainConfig
from tlhub.errors import CheckpointError
from tlhub.fileio import write_json_atomic

#: fields that may change between a run and its resumption
RESUMABLE_FIELDS = ("output_dir", "resume", "overwrite", "num_workers", "eval_batch_size", "cache_dir", "example_top_k")


@dataclass
class RunState:
    """Where a run is; saved with every checkpoint so a killed run resumes exactly here."""

    stage_index: int = 0
    stage_epoch: int = 0  # epochs completed in the current stage
    stage_done: bool = False
    global_epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best_metric: float = -math.inf  # higher is better: accuracy, or minus the loss
    best_epoch: int = -1
    bad_epochs: int = 0  # epochs of this stage without beating the stage's best, for early stopping
    stage_best: float = -math.inf  # the stage's own best validation score (early stopping judges the stage by it)


class Checkpoints:
    """Epoch checkpoints written atomically: a folder per epoch, then a ``latest`` link swapped
    in with one rename. A run killed at any moment leaves the previous checkpoint intact."""

    def __init__(self, root: Path, accelerator):
        self.root = root
        self.accelerator = accelerator

    def latest(self) -> Path | None:
        link = self.root / "latest"
        return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None

    def save(self, model, optimizer, scheduler, state: RunState, cfg: TrainConfig, *, best: bool, ema=None) -> None:
        """``ema``: the averaged copy of the model, when the stage keeps one. It is then the copy
        that was validated, so it is what ``best`` keeps."""
        from safetensors.torch import save_model as save_weights

        acc = self.accelerator
        name = f"epoch-{state.global_epoch:04d}"
        tmp = self.root / f".{name}.tmp"
        acc.wait_for_everyone()
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        acc.wait_for_everyone()
        _save_tree(tmp / f"rng-{acc.process_index}.safetensors", _rng_state())  # each process has its own RNG
        acc.wait_for_everyone()
        if acc.is_main_process:
            save_weights(model, str(tmp / "model.safetensors"), force_contiguous=True)  # channels-last weights too
            if ema is not None:
                save_weights(ema, str(tmp / "ema.safetensors"), force_contiguous=True)
            _save_tree(tmp / "optimizer.safetensors", {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()})
            write_json_atomic(tmp / "state.json", {"state": state.__dict__, "config": _resume_key(cfg)})
            if best:
                shutil.copyfile(tmp / ("ema.safetensors" if ema is not None else "model.safetensors"), self.root / ".best.tmp")
                os.replace(self.root / ".best.tmp", self.root / "best.safetensors")
            final = self.root / name
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            link_tmp = self.root / ".latest.tmp"
            link_tmp.unlink(missing_ok=True)
            link_tmp.symlink_to(name)
            os.replace(link_tmp, self.root / "latest")  # the atomic switch
            for old in self.root.glob("epoch-*"):
                if old.name != name:
                    shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()

    def save_best(self, model, *, replace: dict[str, torch.Tensor]) -> None:
        """Write ``model`` as the best weights, with the parameters in ``replace`` swapped in."""
        from safetensors.torch import save_model as save_weights

        if not self.accelerator.is_main_process:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        params = dict(model.named_parameters())
        current = {n: params[n].detach().clone() for n in replace}
        with torch.no_grad():
            for n, value in replace.items():
                params[n].copy_(value)
            try:
                save_weights(model, str(self.root / ".best.tmp"), force_contiguous=True)
                os.replace(self.root / ".best.tmp", self.root / "best.safetensors")
            finally:
                for n, value in current.items():
                    params[n].copy_(value)

    def matches(self, cfg: TrainConfig) -> bool:
        """Whether the latest checkpoint is of a run with these settings (False when unreadable)."""
        try:
            saved = json.loads((self.latest() / "state.json").read_text(encoding="utf-8"))
            return saved["config"] == _resume_key(cfg)
        except (OSError, ValueError, TypeError, KeyError):
            return False

    def load_state(self, cfg: TrainConfig) -> RunState:
        latest = self.latest()
        _refuse_pickles(latest)
        try:
            saved = json.loads((latest / "state.json").read_text(encoding="utf-8"))
            state = RunState(**saved["state"])
            key = saved["config"]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise _corrupt(latest / "state.json", exc) from None
        if key != _resume_key(cfg):
            changed = sorted(k for k in set(key) | set(_resume_key(cfg)) if key.get(k) != _resume_key(cfg).get(k))
            raise CheckpointError(
                f"{self.root} holds a checkpoint of a run with different settings ({', '.join(changed)})",
                fix="use another --output-dir for the new settings, or add --overwrite to replace that run "
                "(it stays until the new run finishes)",
            )
        rng = latest / f"rng-{self.accelerator.process_index}.safetensors"
        if rng.is_file():
            tree = _load_tree(rng)
            try:
                _set_rng_state(tree)
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise _corrupt(rng, exc) from None
        return state

    def load_model(self, model) -> None:
        _load_weights(model, self.latest() / "model.safetensors")

    def load_ema(self, ema) -> None:
        _load_weights(ema, self.latest() / "ema.safetensors", device=str(next(ema.parameters()).device))

    def load_optimizer(self, optimizer, scheduler) -> None:
        path = self.latest() / "optimizer.safetensors"
        states = _load_tree(path)
        try:
            optimizer.load_state_dict(states["optimizer"])
            scheduler.load_state_dict(states["scheduler"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise _corrupt(path, exc) from None

    def load_best(self, model) -> None:
        best = self.root / "best.safetensors"
        if best.is_file():
            _load_weights(model, best, device=str(next(model.parameters()).device))


#: what a run writes into its output folder, in the order a finished run over another moves it in
#: (the model last: an interrupted move is finished by the next run, see RunFolder.open)
RUN_FILES = ("checkpoints", "data_report.json", "config.yaml", "metrics.json", "model")
STAGING_DIR = ".tlhub-next"  # a run that replaces another is written here until it has finished
_COMMIT_MARK = "FINISHED"


class RunFolder:
    """The output folder of a run: resume what is there, or start over without losing it.

    A run that would replace another (a finished model, checkpoints of other settings, or
    ``--no-resume``) is written into ``OUT/.tlhub-next`` and moved into place only when it
    has finished, so a crash midway leaves the previous run whole. Replacing a finished model,
    or a run with other settings, needs ``overwrite``; ``--no-resume`` alone may only restart
    an unfinished run. The caller holds the folder's lock (tlhub.fileio.lock_folder).
    """

    def __init__(self, out: Path, accelerator):
        self.out, self.accelerator = Path(out), accelerator
        self.staging = self.out / STAGING_DIR
        self.work = self.out  # where this run writes: the folder itself, or the staging folder

    def open(self, cfg: TrainConfig) -> tuple[Checkpoints, RunState, bool]:
        """(checkpoints to write, state to start from, resumed?) for this run."""
        acc = self.accelerator
        if acc.is_main_process and (self.staging / _COMMIT_MARK).is_file():
            self._move_in()  # a run over another was interrupted while moving in: finish that first
        acc.wait_for_everyone()
        current = Checkpoints(self.out / "checkpoints", acc)
        staged = Checkpoints(self.staging / "checkpoints", acc)
        finished = (self.out / "model").exists()
        resume_from = None
        if cfg.resume and cfg.overwrite and staged.latest() is not None and staged.matches(cfg):
            resume_from = staged  # the interrupted run of the same command, written aside
        elif cfg.resume and current.latest() is not None and (current.matches(cfg) or not cfg.overwrite):
            resume_from = current  # (load_state explains a mismatch)
        elif finished and not cfg.overwrite:
            raise CheckpointError(
                f"{self.out} already holds a finished model ({self.out / 'model'})"
                + (" and no checkpoint of this run to resume" if cfg.resume else ", which --no-resume would replace"),
                fix="add --overwrite to replace it (the old model stays until the new run has finished), "
                "or choose another --output-dir",
            )
        if resume_from is not None:
            self.work = self.out if resume_from is current else self.staging
            state = resume_from.load_state(cfg)
            return resume_from, state, True
        # starting over: aside if there is anything to keep until this run has finished
        replaces = any((self.out / name).exists() for name in RUN_FILES)
        acc.wait_for_everyone()  # every process has decided before the folders change
        if acc.is_main_process:
            shutil.rmtree(self.staging, ignore_errors=True)  # an interrupted earlier attempt: starting over
            if replaces:
                self.staging.mkdir(parents=True)
        acc.wait_for_everyone()
        self.work = self.staging if replaces else self.out
        return Checkpoints(self.work / "checkpoints", acc), RunState(), False

    def finish(self) -> None:
        """The run has finished: move it into place (main process), replacing the previous one."""
        acc = self.accelerator
        acc.wait_for_everyone()
        if acc.is_main_process and self.work == self.staging:
            (self.staging / _COMMIT_MARK).touch()
            self._move_in()
        acc.wait_for_everyone()

    def _move_in(self) -> None:
        from tlhub.fileio import swap_in

        for name in RUN_FILES:
            new, old = self.staging / name, self.out / name
            if new.is_dir():
                swap_in(new, old)
            elif new.exists():
                os.replace(new, old)
        shutil.rmtree(self.staging, ignore_errors=True)


def _resume_key(cfg: TrainConfig) -> dict:
    return {k: v for k, v in cfg.to_dict().items() if k not in RESUMABLE_FIELDS}


def _rng_state() -> dict:
    """Every generator's state as tensors and plain numbers: nothing that needs pickle to load."""
    version, words, gauss = random.getstate()
    name, key, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "words": torch.tensor(words, dtype=torch.int64), "gauss": gauss},
        "numpy": {"name": name, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    py, npy = state["python"], state["numpy"]
    random.setstate((int(py["version"]), tuple(int(w) for w in py["words"].tolist()), py["gauss"]))
    np.random.set_state((str(npy["name"]), npy["key"].numpy().astype(np.uint32), int(npy["pos"]),
                         int(npy["has_gauss"]), float(npy["cached_gaussian"])))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- checkpoint files: safetensors only ------------------------------------------------------
# A run folder may come from someone else (a shared run, a downloaded archive), so nothing in it
# is unpickled: even torch.load(weights_only=True) runs pickle's machinery on the file. States
# are trees of tensors and plain values: the tensors go into a safetensors file, the shape of
# the tree into its JSON metadata.

_TREE_KEY = "tlhub.tree"


def _save_tree(path: Path, tree) -> None:
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}

    def encode(value):
        if isinstance(value, torch.Tensor):
            key = str(len(tensors))
            tensors[key] = value.detach().cpu().contiguous().clone()  # own storage: safetensors refuses shared memory
            return {"$tensor": key}
        if isinstance(value, dict):  # keys keep their type (the optimizer's state is keyed by int)
            return {"$dict": [[encode(k), encode(v)] for k, v in value.items()]}
        if isinstance(value, tuple):
            return {"$tuple": [encode(v) for v in value]}
        if isinstance(value, list):
            return [encode(v) for v in value]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, (np.integer, np.floating, np.bool_)):
            return value.item()
        raise TypeError(f"cannot store a {type(value).__name__} in a checkpoint")

    skeleton = json.dumps(encode(tree))
    save_file(tensors, str(path), metadata={_TREE_KEY: skeleton})


def _load_tree(path: Path):
    """The tree written by :func:`_save_tree`; only tensors, containers and plain values come back."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            skeleton = json.loads((f.metadata() or {})[_TREE_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own SafetensorError (and OSError, KeyError, JSON errors)
        raise _corrupt(path, exc) from None

    def decode(value):
        if isinstance(value, list):
            return [decode(v) for v in value]
        if isinstance(value, dict):
            if value.keys() == {"$tensor"}:
                return tensors[value["$tensor"]]
            if value.keys() == {"$dict"}:
                return {decode(k): decode(v) for k, v in value["$dict"]}
            if value.keys() == {"$tuple"}:
                return tuple(decode(v) for v in value["$tuple"])
            raise ValueError(f"unknown entry {sorted(value)}")
        return value

    try:
        return decode(skeleton)
    except (KeyError, TypeError, ValueError) as exc:
        raise _corrupt(path, exc) from None


def _load_weights(model, path: Path, **kwargs) -> None:
    from safetensors.torch import load_model as load_weights

    try:
        load_weights(model, str(path), **kwargs)
    except Exception as exc:  # SafetensorError, OSError, or missing/mismatched keys (RuntimeError)
        raise _corrupt(path, exc) from None


def _refuse_pickles(folder: Path) -> None:
    """Checkpoints of older tlhub versions (and planted files) hold pickles: never open them."""
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in (".pt", ".pth", ".pkl", ".pickle", ".bin"))
    if pickles:
        raise CheckpointError(
            f"{folder} holds {', '.join(pickles)}: pickle files, which can run any code when loaded, "
            "so tlhub does not open them (older tlhub versions wrote them; a shared run folder may plant them)",
            fix="start over here with --no-resume (and --overwrite if it holds a finished model; the old run "
            "stays until the new one has finished), or use another --output-dir",
        )


def _corrupt(path: Path, exc: BaseException) -> CheckpointError:
    return CheckpointError(
        f"checkpoint file {path} cannot be read ({type(exc).__name__}: {exc})",
        fix="start over here with --no-resume (and --overwrite if it holds a finished model; the old run "
        "stays until the new one has finished), or use another --output-dir",
    )
