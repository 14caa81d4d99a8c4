"""Stage 2 of transfer learning from evidence: which layers transfer, which the head reads, and
how many to retrain.

    evidence = gather_layer_evidence(cfg, group_names, {i: train features of group i}, train labels)
    evidence.chosen      # layer groups the head reads (``feature_layers``, ``layer_selection``)
    evidence.unfreeze    # groups to fine-tune (``unfreeze: auto``), with evidence.unfreeze_reason

Every score here is the exact leave-one-out accuracy of a ridge classifier
(:func:`tlhub.engine.probe.loo_accuracy`) on the **training split only**: the validation split
stays held out for the probe's regularisation and the fine-tune's epochs, the test split for the
final evaluation. Why the training split rather than the validation split: with a hundred or so
validation examples one example is a point of accuracy, and a greedy search over layer sets
would chase that noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from tlhub.engine.probe import MAX_SCORING_EXAMPLES, layer_scores, select_layers, unfreeze_recommendation

if TYPE_CHECKING:  # pragma: no cover
    from tlhub.engine.config import TrainConfig


@dataclass
class LayerEvidence:
    """What the per-layer probes showed, and what was decided from it (saved as ``layers.json``
    and in the training record; plotted as ``images/layer_scores.png``)."""

    group_names: list[str]
    widths: list[int]
    scores: dict[int, float]  # layer group -> leave-one-out accuracy of a probe on that group alone
    scored_by: str
    candidates: list[int]  # the groups the head could read (feature_layers)
    chosen: list[int]  # the groups it reads
    selection: str  # how they were chosen
    steps: list[dict] = field(default_factory=list)  # greedy selection: {"added", "score", "gain"}
    chosen_score: float | None = None  # leave-one-out accuracy of the chosen set together
    unfreeze: int | None = None
    unfreeze_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": [{"index": i, "name": n, "width": w, "cv_accuracy": self.scores.get(i)}
                       for i, (n, w) in enumerate(zip(self.group_names, self.widths))],
            "scored_by": self.scored_by,
            "candidates": self.candidates,
            "chosen": self.chosen,
            "chosen_names": [self.group_names[i] for i in self.chosen],
            "chosen_cv_accuracy": self.chosen_score,
            "selection": self.selection,
            "steps": self.steps,
            "unfreeze": self.unfreeze,
            "unfreeze_reason": self.unfreeze_reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LayerEvidence":
        groups = list(d.get("groups") or [])
        return cls(
            group_names=[g["name"] for g in groups], widths=[int(g["width"]) for g in groups],
            scores={int(g["index"]): g["cv_accuracy"] for g in groups if g.get("cv_accuracy") is not None},
            scored_by=d.get("scored_by", ""), candidates=list(d.get("candidates") or []), chosen=list(d.get("chosen") or []),
            selection=d.get("selection", ""), steps=list(d.get("steps") or []), chosen_score=d.get("chosen_cv_accuracy"),
            unfreeze=d.get("unfreeze"), unfreeze_reason=d.get("unfreeze_reason", ""),
        )

    def summary_lines(self) -> list[str]:
        n = len(self.group_names)
        curve = "  ".join(f"{i}:{self.scores[i]:.3f}" for i in sorted(self.scores))
        lines = [f"probe {self.scored_by} accuracy of each layer group alone (0 = input side, {n - 1} = last): {curve}",
                 f"head reads {', '.join(f'{i} ({self.group_names[i]})' for i in self.chosen)}: {self.selection}"]
        if self.unfreeze is not None:
            lines.append(f"unfreeze {self.unfreeze}: {self.unfreeze_reason}")
        return lines


def gather_layer_evidence(cfg: "TrainConfig", group_names: Sequence[str], train: Mapping[int, np.ndarray], y, *,
                          progress: bool = True, last: int | None = None) -> LayerEvidence:
    """Score each layer group of ``train`` alone, choose the head's groups among
    ``cfg.feature_layers`` (greedy forward selection, or all of them with ``layer_selection:
    none``), and recommend how many groups to unfreeze. ``last``: the group ``feature_layers:
    last`` means (the model's :meth:`~tlhub.adapters.model.TransferModel.embedding_group`;
    default the last group)."""
    from tqdm.auto import tqdm

    from tlhub.engine.config import feature_layer_indices

    n = len(group_names)
    y = np.asarray(y, dtype=np.int64)
    candidates = list(range(n)) if cfg.feature_layers in ("last", "all") else feature_layer_indices(cfg, n)
    single: dict[int, dict] = {}
    for i in tqdm(range(n), desc="scoring layers", unit="group", leave=False, disable=not progress):
        single.update(layer_scores({i: train[i]}, y, seed=cfg.seed))
    scored_by = single[n - 1]["scored_by"]
    scores = {i: float(s["score"]) for i, s in single.items()}
    steps: list[dict] = []
    chosen_score = None
    last = n - 1 if last is None else int(last)
    if cfg.feature_layers == "last":
        chosen, selection = [last], "feature_layers: last (the backbone's own features)"
        if last != n - 1:
            chosen, selection = [last], (f"feature_layers: last, the backbone's own embedding: {group_names[last]} "
                                         f"(group {n - 1}, {group_names[n - 1]}, feeds the native classifier but is not the embedding the backbone was trained to give)")
        chosen_score = scores[last]
    elif cfg.layer_selection == "none" or len(candidates) == 1:
        chosen, selection = candidates, f"feature_layers: {cfg.feature_layers}, layer_selection: none (every listed group)"
    else:
        pick = select_layers({i: train[i] for i in candidates}, y, seed=cfg.seed, single={i: single[i] for i in candidates})
        chosen, selection, steps, chosen_score = pick.layers, pick.reason, pick.steps, pick.score
    unfreeze, reason = unfreeze_recommendation(scores, n, examples=min(len(y), MAX_SCORING_EXAMPLES))
    return LayerEvidence(group_names=list(group_names), widths=[int(train[i].shape[1]) for i in range(n)], scores=scores,
                         scored_by=scored_by, candidates=candidates, chosen=sorted(chosen), selection=selection, steps=steps,
                         chosen_score=chosen_score, unfreeze=unfreeze if cfg.unfreeze == "auto" else None,
                         unfreeze_reason=reason if cfg.unfreeze == "auto" else "")
