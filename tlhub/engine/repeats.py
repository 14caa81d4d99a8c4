"""Repeated runs (``tlhub train --repeats K``): one score on small data is a noisy number.

    train_repeated(cfg)
      1. K runs, seeds cfg.seed + i (the seed also draws the validation split), each a whole
         ordinary run of its own in OUTPUT/repeats/seed-N/ (its own lock, checkpoints, resume)
      2. keep the run that is best ON VALIDATION (never the test score) as OUTPUT/model
      3. OUTPUT/repeats.json: every run, mean ± sd of each held-out metric, which seed was kept

A killed repeated run resumes like a single one: a seed whose model is saved is reused as it is,
an unfinished seed resumes from its own checkpoints.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tlhub.engine.config import TrainConfig
from tlhub.errors import CheckpointError

REPEATS_DIR = "repeats"
REPEATS_FILE = "repeats.json"


@dataclass
class RepeatsResult:
    output_dir: Path
    model_dir: Path  # OUTPUT/model: a copy of the kept seed's model
    runs: list[dict[str, Any]]  # one per seed, as in repeats.json
    summary: dict[str, dict[str, float | None]]  # metric -> {"mean", "sd"} over the held-out results
    kept_seed: int
    reused_seeds: list[int]  # seeds whose finished model was reused, not retrained
    seconds: float

    @property
    def metrics(self) -> dict[str, float]:
        """The kept run's held-out metrics (what OUTPUT/model scored)."""
        return next(r["test"]["metrics"] for r in self.runs if r["seed"] == self.kept_seed)


def seed_dir(output_dir: str | os.PathLike, seed: int) -> Path:
    return Path(output_dir) / REPEATS_DIR / f"seed-{seed}"


def train_repeated(cfg: TrainConfig) -> RepeatsResult:
    """Train ``cfg.repeats`` times with seeds ``cfg.seed + i``; keep the best on validation.

    The caller holds OUTPUT's lock (``tlhub.engine.trainer.train``); each seed's run locks its
    own folder, a different lock file, so the two never wait on each other.
    """
    from tlhub.engine.trainer import train

    started = time.perf_counter()
    out = Path(cfg.output_dir)
    main = int(os.environ.get("RANK", "0")) == 0
    _refuse_to_replace_another_model(cfg, out)
    reused = []
    for i in range(cfg.repeats):
        seed_cfg = _seed_config(cfg, cfg.seed + i)
        if cfg.resume and _finished(seed_cfg):
            reused.append(seed_cfg.seed)
            continue
        if main:
            print(f"\n== repeat {i + 1}/{cfg.repeats}: seed {seed_cfg.seed} -> {seed_cfg.output_dir}")
        train(seed_cfg)  # locks, resumes and saves like any single run

    runs = [_run_summary(cfg.seed + i, seed_dir(out, cfg.seed + i) / "model") for i in range(cfg.repeats)]
    kept, why = _select(runs)
    summary = _mean_sd(runs)
    report = {
        "k": cfg.repeats,
        "seeds": [r["seed"] for r in runs],
        "kept_seed": kept["seed"],
        "kept_because": why,
        "selected_by": "best_validation_accuracy, ties by best_validation_loss (never the test score)",
        "summary": summary,
        "runs": runs,
        "config": _command_key(cfg),
    }
    model_dir = out / "model"
    if main:
        _keep(seed_dir(out, kept["seed"]) / "model", model_dir, report)
        from tlhub.fileio import write_json_atomic

        write_json_atomic(out / REPEATS_FILE, report)
        print("\n" + format_table(report))
        print(f"\nmodel saved to {model_dir} (seed {kept['seed']}: {why})")
    return RepeatsResult(out, model_dir, runs, summary, kept["seed"], reused, time.perf_counter() - started)


def format_table(report: dict[str, Any]) -> str:
    """Every run, then ``accuracy mean 0.xxx ± 0.xxx over K seeds``."""
    split = report["runs"][0]["test"]["split"]
    lines = [f"{'seed':>6}  {'val acc':>8}  {'val loss':>8}  {split + ' acc':>10}  {'95% CI':<17}  kept"]
    for r in report["runs"]:
        iv = r["test"]["intervals"].get("accuracy")
        ci = f"[{iv['low']:.3f}, {iv['high']:.3f}]" if iv else ""
        lines.append(f"{r['seed']:>6}  {_num(r['best_validation_accuracy']):>8}  {_num(r['best_validation_loss']):>8}  "
                     f"{_num(r['test']['metrics'].get('accuracy')):>10}  {ci:<17}  {'*' if r['seed'] == report['kept_seed'] else ''}")
    lines.append(summary_line(report))
    return "\n".join(lines)


def summary_line(report: dict[str, Any]) -> str:
    acc = report["summary"].get("accuracy") or {}
    sd = acc.get("sd")
    return f"accuracy mean {acc.get('mean', float('nan')):.3f} ± {sd:.3f} over {report['k']} seeds" if sd is not None else \
        f"accuracy {acc.get('mean', float('nan')):.3f} over 1 seed (no spread to report)"


# -- pieces ---------------------------------------------------------------------------------------
def _seed_config(cfg: TrainConfig, seed: int) -> TrainConfig:
    return cfg.replace(seed=seed, repeats=1, output_dir=str(seed_dir(cfg.output_dir, seed)))


def _finished(seed_cfg: TrainConfig) -> bool:
    """Whether the seed's folder holds a complete model of exactly this run (then it is reused)."""
    from tlhub.core.record import TrainingRecord
    from tlhub.core.saving import EVAL_FILE
    from tlhub.engine.checkpoints import RESUMABLE_FIELDS

    model = Path(seed_cfg.output_dir) / "model"
    if not (model / EVAL_FILE).is_file():
        return False  # save_model swaps the folder in whole, so eval_results.json means complete
    try:
        saved = TrainingRecord.load(model).config
    except Exception:  # unreadable: let the ordinary run explain it or replace it
        return False
    want = {k: v for k, v in seed_cfg.to_dict().items() if k not in RESUMABLE_FIELDS}
    return {k: v for k, v in saved.items() if k not in RESUMABLE_FIELDS} == want


def _run_summary(seed: int, model_dir: Path) -> dict[str, Any]:
    from tlhub.core.record import TrainingRecord
    from tlhub.engine.evaluation import EvalResult

    record, result = TrainingRecord.load(model_dir), EvalResult.load(model_dir)
    return {
        "seed": seed,
        "output_dir": str(model_dir.parent),
        "best_validation_accuracy": record.best_validation_accuracy,
        "best_validation_loss": record.best_validation_loss,
        "best_epoch": record.best_epoch,
        "test": {
            "split": result.split,
            "num_samples": result.num_samples,
            "metrics": dict(result.metrics),
            "intervals": {k: v.to_dict() for k, v in result.intervals.items()},
        },
    }


def _select(runs: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The run best on validation: highest accuracy, then lowest loss, then the first seed."""
    def key(r):
        acc, loss = r["best_validation_accuracy"], r["best_validation_loss"]
        return (-np.inf if acc is None else acc, np.inf if loss is None else -loss)

    best = max(runs, key=key)  # max keeps the first of equal keys: the lowest seed
    acc = best["best_validation_accuracy"]
    tied = [r for r in runs if r["best_validation_accuracy"] == acc]
    why = f"highest validation accuracy ({_num(acc)})"
    if len(tied) > 1:
        why += f", tied with seed(s) {', '.join(str(r['seed']) for r in tied if r is not best)}: lowest validation loss ({_num(best['best_validation_loss'])})"
    return best, why


def _mean_sd(runs: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Mean and sample sd (ddof=1) of each held-out metric over the runs (sd None for one run)."""
    out = {}
    for name in runs[0]["test"]["metrics"]:
        values = np.array([r["test"]["metrics"][name] for r in runs if name in r["test"]["metrics"]], dtype=float)
        out[name] = {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else None}
    return out


def _command_key(cfg: TrainConfig) -> dict[str, Any]:
    from tlhub.engine.checkpoints import RESUMABLE_FIELDS

    return {k: v for k, v in cfg.to_dict().items() if k not in RESUMABLE_FIELDS}


def _refuse_to_replace_another_model(cfg: TrainConfig, out: Path) -> None:
    """OUTPUT/model of a single run, or of repeats with other settings, needs --overwrite."""
    from tlhub.core.record import TrainingRecord

    model = out / "model"
    if cfg.overwrite or not model.exists():
        return
    try:
        previous = TrainingRecord.load(model).repeats
    except Exception:
        previous = None
    if previous is None or previous.get("config") != _command_key(cfg):
        raise CheckpointError(
            f"{out} already holds a finished model ({model}) of another run",
            fix="add --overwrite to replace it (the old model stays until the repeated runs have finished), or choose another --output-dir",
        )


def _keep(source: Path, model_dir: Path, report: dict[str, Any]) -> None:
    """Copy the kept seed's model to OUTPUT/model, its record naming the repeats; swapped in whole."""
    from tlhub.core.record import TrainingRecord
    from tlhub.fileio import swap_in

    staging = Path(tempfile.mkdtemp(dir=model_dir.parent, prefix=f".{model_dir.name}.repeats-"))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        record = TrainingRecord.load(staging)
        record.repeats = {k: v for k, v in report.items()}
        record.save(staging)
        swap_in(staging, model_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"
