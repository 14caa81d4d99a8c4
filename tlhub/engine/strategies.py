"""Transfer-learning strategies as a plan of stages.

Each strategy is the classic recipe expressed as a list of :class:`Stage` s, so the trainer runs
any of them with one loop:

- ``feature-extraction``: a new head on the frozen backbone (a linear probe), trained on
  features computed once and cached.
- ``fine-tune``: a new head, and the last N (or all) layer groups unfrozen from the start, with
  layer-wise learning-rate decay towards the input.
- ``lp-ft`` (default): linear probe first, then fine-tune at a lower learning rate. Starting the
  fine-tune from a good head keeps the early large gradients of a random head from distorting
  the pretrained features (Kumar et al., ICLR 2022).
- ``gradual-unfreeze``: linear probe, then one more layer group unfrozen every
  ``unfreeze_every`` epochs, output side first (ULMFiT).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tlhub.engine.config import TrainConfig


@dataclass(frozen=True)
class Stage:
    name: str
    epochs: int
    trainable_groups: int | str  # 0: head only; N: head + last N groups; "all"
    lr: float
    weight_decay: float
    layer_decay: float = 1.0
    use_feature_cache: bool = False  # head-only stages may train on cached features
    warmup_epochs: float = 0.0

    @property
    def head_only(self) -> bool:
        return self.trainable_groups == 0

    def to_dict(self) -> dict:
        return asdict(self)


def plan_stages(cfg: TrainConfig, num_groups: int, *, recommended_unfreeze: int | None = None) -> list[Stage]:
    """The stages of ``cfg.strategy`` for a backbone with ``num_groups`` layer groups.

    ``unfreeze: auto`` follows ``recommended_unfreeze``: the number of groups after the first one
    whose features alone score within one standard error of the best
    (:func:`tlhub.engine.probe.unfreeze_recommendation`, computed by
    the trainer from the per-layer probe on cached features)."""
    probe = Stage(
        "linear-probe",
        cfg.probe_epochs,
        0,
        cfg.probe_lr,
        cfg.probe_weight_decay,
        use_feature_cache=cfg.feature_cache,
    )
    if cfg.unfreeze == "auto":
        if recommended_unfreeze is None:
            from tlhub.errors import ConfigError

            raise ConfigError("unfreeze: auto needs the per-layer probe scores, and none were computed",
                              fix="run through tlhub.train (it scores the layers first), or give unfreeze a number")
        unfreeze = max(1, min(int(recommended_unfreeze), num_groups))
    else:
        unfreeze = num_groups if cfg.unfreeze == "all" else min(int(cfg.unfreeze), num_groups)

    def fine_tune(name: str, epochs: int, groups: int | str, warmup: float) -> Stage:
        return Stage(name, epochs, groups, cfg.lr, cfg.weight_decay, cfg.layer_decay, warmup_epochs=warmup)

    if cfg.strategy == "feature-extraction":
        return [probe]
    if cfg.strategy == "fine-tune":
        return [fine_tune("fine-tune", cfg.epochs, unfreeze, cfg.warmup_epochs)]
    if cfg.strategy == "lp-ft":
        stages = [probe] if cfg.probe_epochs else []
        return stages + ([fine_tune("fine-tune", cfg.epochs, unfreeze, cfg.warmup_epochs)] if cfg.epochs else [])
    # gradual-unfreeze: one more group every `unfreeze_every` epochs until `unfreeze` groups train
    stages = [probe] if cfg.probe_epochs else []
    remaining, groups = cfg.epochs, 0
    while remaining > 0:
        groups = min(groups + 1, unfreeze)
        epochs = remaining if groups == unfreeze else min(cfg.unfreeze_every, remaining)
        stages.append(fine_tune(f"unfreeze-{groups}", epochs, groups, 0.0))
        remaining -= epochs
    return stages
