"""Stage 1 from evidence: which pretrained backbone suits this data (``tlhub select``, ``--backbone auto``).

    selection = select_backbone(cfg)                 # cfg: a TrainConfig naming the data and its options
    selection.winner.backbone                        # the top pick
    selection.save(folder)                           # select.json + select.png
    selection.train_command(cfg)                     # the `tlhub train` line for the winner

For each candidate, one pass of the frozen backbone over the **training split only**, through the
trainer's own feature cache (the key ``tlhub train`` uses with the same options, so the winner's
probe stage gets a cache hit), then two scores on those features, neither of which reads the
validation or test split:

- the stratified k-fold cross-validated accuracy of a linear probe, mean ± sd over the folds: a
  ridge classifier on standardised features, its strength chosen inside each training fold by
  exact leave-one-out (:func:`tlhub.engine.probe.ridge_fold_accuracies`). Why ridge rather than
  the logistic probe the probe stage fits: one eigendecomposition per fold instead of an
  iterative fit per fold and strength. On Protocol A the logistic version (C in {0.01, 0.1})
  spent about 25 s a candidate, five times the feature pass, and the selector is meant to cost a
  small fraction of fine-tuning the candidates;
- LogME (:func:`tlhub.engine.transferability.logme`): the evidence of a Bayesian linear model
  on the raw features, closed form, the paper's transferability estimate.

Candidates are ranked by the cross-validated accuracy (LogME breaks ties): it is the quantity the
user cares about, and on a thousand examples it is cheap. The estimated fine-tune seconds per
epoch come from one timed training step of 8 real examples after a warm-up step, scaled to the
batch size and the training-set size. Against the planner's five steps of full batches (2 cores,
batch 32): 1.14 s a step against 0.99 s for MiniLM, 6.8 against 5.8 s for mpnet, 0.55 against
0.45 s for Lite0 at 96 px, 0.59 against 0.57 s for Lite2 (a little high, as small batches use the
cores less well), at about an eighth of the measuring time (4.5 s against 34 s for mpnet).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from tlhub.errors import ConfigError, DataError, TlhubError
from tlhub.fileio import write_json_atomic

if TYPE_CHECKING:  # pragma: no cover
    from tlhub.engine.config import TrainConfig

SELECT_FILE = "select.json"
SELECT_PNG = "select.png"
#: Examples per timed training step behind the table's fine-tune estimate (scaled to a batch).
SELECT_TIMING_EXAMPLES = 8


@dataclass
class CandidateScore:
    """One candidate's line of the table (``None`` where it was not measured)."""

    backbone: str
    adapter: str | None = None
    feature_dim: int | None = None
    parameters: int | None = None
    feature_seconds: float | None = None  # the feature pass over the training split (a cache hit: reading it)
    cache_hit: bool | None = None
    cv_accuracy: float | None = None
    cv_sd: float | None = None
    cv_folds: list[float] = field(default_factory=list)
    logme: float | None = None
    epoch_seconds: float | None = None  # estimated fine-tune seconds per epoch on this machine
    skipped: str | None = None  # why it was not scored (another modality, an error, the budget)
    rank: int | None = None

    @property
    def scored(self) -> bool:
        return self.cv_accuracy is not None


@dataclass
class Selection:
    """What ``tlhub select`` found: every candidate ranked, and how (saved as ``select.json``)."""

    data: str
    modality: str
    num_train: int
    num_classes: int
    candidates: list[CandidateScore]
    folds: int
    seconds: float
    budget_s: float | None = None
    ranked_by: str = "k-fold cross-validated probe accuracy on the training split (LogME breaks ties)"

    @property
    def ranked(self) -> list[CandidateScore]:
        return sorted((c for c in self.candidates if c.scored), key=lambda c: c.rank or 0)

    @property
    def winner(self) -> CandidateScore:
        ranked = self.ranked
        if not ranked:
            reasons = "; ".join(f"{c.backbone}: {c.skipped}" for c in self.candidates) or "no candidates"
            raise TlhubError(f"no candidate backbone could be scored ({reasons})",
                             fix="name candidates of the data's modality with --candidates, or install the offline backbones (`tlhub assets install`)")
        return ranked[0]

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "modality": self.modality, "num_train": self.num_train, "num_classes": self.num_classes,
                "folds": self.folds, "seconds": self.seconds, "budget_s": self.budget_s, "ranked_by": self.ranked_by,
                "winner": self.winner.backbone if self.ranked else None, "candidates": [asdict(c) for c in self.candidates]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Selection":
        return cls(data=d["data"], modality=d["modality"], num_train=d["num_train"], num_classes=d["num_classes"],
                   candidates=[CandidateScore(**c) for c in d["candidates"]], folds=d["folds"], seconds=d["seconds"],
                   budget_s=d.get("budget_s"), ranked_by=d.get("ranked_by", ""))

    def save(self, folder: str | os.PathLike, *, images: str | os.PathLike | None = None) -> Path:
        """``folder/select.json`` and, when anything was scored, the bar chart ``select.png`` in
        ``images`` (default: ``folder``; a saved model keeps it in its ``images/``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / SELECT_FILE, self.to_dict())
        if self.ranked:
            from tlhub.engine.plots import plot_selection

            plot_selection(self, Path(images or folder) / SELECT_PNG)
        return folder / SELECT_FILE

    def table(self) -> tuple[list[str], list[list[Any]]]:
        headers = ["rank", "backbone", "cv accuracy", "LogME", "dim", "params (M)", "feature pass s", "fine-tune s/epoch (est.)"]
        rows = []
        for c in self.ranked + [c for c in self.candidates if not c.scored]:
            if not c.scored:
                rows.append(["-", c.backbone, f"skipped: {c.skipped}", "", "", "", "", ""])
                continue
            rows.append([c.rank, c.backbone, f"{c.cv_accuracy:.4f} ± {c.cv_sd:.4f}", f"{c.logme:.4f}", c.feature_dim,
                         f"{(c.parameters or 0) / 1e6:.1f}", f"{c.feature_seconds:.1f}" + (" (cache)" if c.cache_hit else ""),
                         f"{c.epoch_seconds:.0f}" if c.epoch_seconds is not None else ""])
        return headers, rows

    def summary(self) -> str:
        """One line for the run record and the card."""
        scored = self.ranked
        parts = ", ".join(f"{c.backbone} {c.cv_accuracy:.3f} ± {c.cv_sd:.3f} (LogME {c.logme:.3f})" for c in scored)
        return (f"chosen by `tlhub select` over {len(scored)} candidate{'s' if len(scored) != 1 else ''} "
                f"({self.folds}-fold probe accuracy on the {self.num_train:,} training examples): {parts}")

    def train_command(self, cfg: "TrainConfig | None" = None) -> str:
        """The ``tlhub train`` line that trains the winner with the options the selection used."""
        import shlex

        args = ["tlhub", "train", "--data", self.data, "--backbone", self.winner.backbone]
        if cfg is not None:
            for name in ("image_size", "crop_pct", "max_length", "max_train_per_class", "max_train_samples", "cache_dir"):
                value = getattr(cfg, name, None)
                if value is not None:
                    args += ["--" + name.replace("_", "-"), str(value)]
        return " ".join(shlex.quote(a) for a in args)


def available_backbones(modality: str) -> list[str]:
    """The installed offline backbones (``tlhub assets install``) of this modality, smallest download first."""
    from tlhub.offline.install import asset_status

    library_modality = {"timm": "image", "transformers": "text"}
    found = [s.asset for s in asset_status() if s.installed and library_modality.get(s.asset.library) == modality]
    return [a.repo_id for a in sorted(found, key=lambda a: a.size_mb or 0)]


def _data_modality(cfg: "TrainConfig") -> str:
    from tlhub.data.loading import load_data

    return load_data(cfg.data_spec(), progress=False).modality


def select_backbone(cfg: "TrainConfig", candidates: Sequence[str] | None = None, *, budget_s: float | None = None,
                    folds: int = 5, progress: bool = True, say=print) -> Selection:
    """Rank ``candidates`` (default: every installed offline backbone of the data's modality) for
    the data ``cfg`` names, on its training split only (see the module docstring)."""
    import numpy as np
    from tqdm.auto import tqdm

    started = time.perf_counter()
    names = list(dict.fromkeys(candidates or []))
    modality = None
    if not names:
        modality = _data_modality(cfg)
        names = available_backbones(modality)
        if not names:
            raise ConfigError(f"no {modality} backbones are installed to choose from",
                              fix="install the offline backbones (`tlhub assets install`) or name candidates with --candidates")
    if folds < 2:
        raise ConfigError(f"folds must be at least 2, got {folds}", fix="use 5")
    scores: list[CandidateScore] = []
    datasets: dict[str, Any] = {}
    data = None
    bar = tqdm(names, desc="select", unit="backbone", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        score = CandidateScore(name)
        scores.append(score)
        elapsed = time.perf_counter() - started
        done = [s for s in scores if s.scored]
        # the first candidate always runs; another only when one more like those so far still fits
        if budget_s is not None and done and elapsed + elapsed / len(done) > budget_s:
            score.skipped = f"the budget of {budget_s:g} s would be exceeded ({elapsed:.0f} s spent, about {elapsed / len(done):.0f} s a candidate)"
            continue
        try:
            data = _score_candidate(cfg, score, datasets, modality, folds, np)
        except TlhubError as exc:
            score.skipped = exc.message if hasattr(exc, "message") else str(exc)
        if data is not None and modality is None:
            modality = data.modality
        if score.scored:
            say(f"select    {name}: cv accuracy {score.cv_accuracy:.4f} ± {score.cv_sd:.4f}, LogME {score.logme:.4f} "
                f"({score.feature_dim} features, {score.feature_seconds:.1f} s{' from the cache' if score.cache_hit else ''})")
        else:
            say(f"select    {name}: skipped ({score.skipped})")
    ranked = sorted((s for s in scores if s.scored), key=lambda s: (-s.cv_accuracy, -s.logme))
    for rank, s in enumerate(ranked, 1):
        s.rank = rank
    any_data = next(iter(datasets.values()), None)
    return Selection(data=str(cfg.data), modality=modality or "", num_train=len(any_data.splits["train"]) if any_data else 0,
                     num_classes=len(any_data.labels) if any_data else 0, candidates=scores, folds=folds,
                     seconds=time.perf_counter() - started, budget_s=budget_s)


def _score_candidate(cfg: "TrainConfig", score: CandidateScore, datasets: dict, modality: str | None, folds: int, np):
    from tlhub.core.factory import resolve_backbone
    from tlhub.data.loading import load_data
    from tlhub.engine.probe import ridge_fold_accuracies
    from tlhub.engine.recipe import epoch_seconds, time_steps
    from tlhub.engine.trainer import feature_loop
    from tlhub.engine.transferability import logme

    own = cfg.replace(backbone=score.backbone)
    source, adapter = resolve_backbone(score.backbone, revision=cfg.revision, adapter=cfg.adapter)
    score.adapter = adapter.name
    if modality is not None and adapter.modality != modality:
        score.skipped = f"a {adapter.modality} backbone; the data is {modality}"
        return None
    if adapter.name not in datasets:  # the same rows for every candidate of one adapter
        datasets[adapter.name] = load_data(own.data_spec(), modality=adapter.modality, decode=adapter.decode_input, progress=False)
    data = datasets[adapter.name]
    loop = feature_loop(own, source, adapter, data)
    model = loop.model
    score.parameters = int(sum(p.numel() for p in model.parameters()))
    clock = time.perf_counter()
    x, y, score.cache_hit = loop.embedding_features("train")  # the training split only
    score.feature_seconds = time.perf_counter() - clock
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
    score.feature_dim = int(x.shape[1])
    counts = np.bincount(y)
    if counts[counts > 0].min() < 2:
        raise DataError("a class has a single training example, so candidates cannot be cross-validated",
                        fix="give every class at least two training examples")
    best = ridge_fold_accuracies(x, y, folds=folds, seed=cfg.seed)
    score.cv_folds = [round(float(a), 6) for a in best]
    score.cv_accuracy, score.cv_sd = float(np.mean(best)), float(np.std(best, ddof=1)) if len(best) > 1 else 0.0
    score.logme = logme(x, y)
    # the timed training step of --recipe auto's plan, on 8 examples after one warm-up step: an
    # estimate for the table, where the plan's five full batches would cost the selector more
    # than a feature pass (34 s for all-mpnet-base-v2)
    step_s, _ = time_steps(adapter, model, data, own.batch_size, examples=SELECT_TIMING_EXAMPLES, warmup=1, timed=1)
    score.epoch_seconds = epoch_seconds(len(y), own.batch_size, step_s)
    return data


def load_selection(folder: str | os.PathLike) -> Selection:
    path = Path(folder) / SELECT_FILE
    try:
        return Selection.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} cannot be read ({exc})", fix="run `tlhub select` again") from None
