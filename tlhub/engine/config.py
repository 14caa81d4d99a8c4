"""``TrainConfig``: one dataclass for a whole run, validated when it is created.

It can come from a YAML file and be overridden on the command line (every field is also a
``tlhub train --field-name`` option). The resolved config is saved with the model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from tlhub.errors import ConfigError

STRATEGIES = ("feature-extraction", "fine-tune", "lp-ft", "gradual-unfreeze")
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
FEATURE_PRECISION = ("auto", "fp32", "bf16")

#: The README's built-in default: real ImageNet weights, real data, offline.
DEFAULT_BACKBONE = "tlhub-offline/tf_efficientnet_lite0.in1k"
DEFAULT_DATA = "fashion-mnist"
#: The largest --image-size accepted: beyond any pretrained backbone's input, and out of memory.
MAX_IMAGE_SIZE = 4096


@dataclass
class TrainConfig:
    """Everything that defines a training run. Field comments double as ``--help`` text."""

    # -- what to train on -------------------------------------------------------------------
    backbone: str = DEFAULT_BACKBONE  # Hub repo id, hf-hub:NAME, ADAPTER:NAME or local folder
    revision: str | None = None  # branch, tag or commit of the backbone
    adapter: str | None = None  # force an adapter instead of reading the repo's config
    data: str = DEFAULT_DATA  # builtin name, folder, CSV/JSON/Parquet file, Hub dataset (or a Dataset in Python)
    data_config: str | None = None  # configuration of a Hub dataset that has several (load_dataset's config name)
    input_column: str | None = None  # auto-detected when unset
    label_column: str | None = None  # auto-detected when unset
    train_split: str = "train"
    validation_split: str | None = None  # unset: a stratified split carved out of train
    test_split: str | None = "test"  # held-out split for the final evaluation
    validation_fraction: float = 0.1
    max_train_per_class: int | None = None  # first N examples of each class, in file order
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    on_bad_input: str = "skip"  # skip (and count in the report) or error
    strict: bool = False  # stop before training when the data pre-flight finds duplicates, leakage, imbalance or label-name variants
    image_size: int | None = None  # override the backbone's input size (e.g. 96 for small images)
    crop_pct: float | None = None  # override the backbone's centre-crop fraction
    max_length: int | None = None  # override the text backbone's max sequence length
    augment: bool = True  # light augmentation while fine-tuning images (random crop, flip)
    auto_augment: str | None = None  # images: "trivialaugment" (TrivialAugmentWide) or a timm policy ("rand-m9-mstd0.5")
    random_erasing: float = 0.0  # images: probability of erasing a random patch (timm's re_prob)

    # -- how to train ---------------------------------------------------------------------------
    recipe: str = "fixed"  # fixed: these options as given; auto: input size, strategy, epochs, augmentation and averaging planned from the data and --budget (options you give are kept)
    budget: str | None = None  # time for the whole run with --recipe auto, e.g. 3m, 600s, 1h (default 10m)
    strategy: str = "lp-ft"  # feature-extraction | fine-tune | lp-ft | gradual-unfreeze
    probe_epochs: int = 40  # epochs of the head on frozen (cached) features
    probe_lr: float = 3e-4
    probe_weight_decay: float = 1e-4
    probe_hflip: bool = True  # images: also train the probe on features of flipped training images
    probe_solver: str = "logistic"  # logistic: logistic regression on standardised features, solved to convergence, L2 strength chosen on validation or CV (any feature scale; "lbfgs", its older name, means the same); adamw: probe_epochs of AdamW at probe_lr
    epochs: int = 10  # fine-tuning epochs (all strategies that unfreeze)
    lr: float = 1e-3  # fine-tuning learning rate of the head and the last layer group
    layer_decay: float = 0.75  # lr multiplier per layer group towards the input (1.0 = flat)
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    clip_grad: float | None = None  # fine-tuning: clip the gradient's global L2 norm to this before each step (timm's --clip-grad); every epoch logs its largest norm either way
    class_weights: str = "auto"  # loss weights per class: auto (balanced when the largest training class is over 3x the smallest), balanced, none
    unfreeze: str = "all"  # layer groups to unfreeze when fine-tuning: "all", a number (last N), or auto (from the per-layer probe scores)
    feature_layers: str = "last"  # layer groups the probe's head reads: last, all, or indices such as "3,5,7" (see tlhub describe)
    layer_grid: int = 2  # intermediate layers' spatial maps are average-pooled over grid x grid cells for the per-layer probe and a head over several layers (1 = global average)
    layer_selection: str = "greedy"  # with several feature_layers: greedy (forward selection by leave-one-out accuracy on the training split) or none (use them all)
    unfreeze_every: int = 1  # gradual-unfreeze: epochs between unfreezing one more group
    norm_eval: bool = True  # keep BatchNorm's pretrained statistics while fine-tuning (the affine weights still train); --no-norm-eval updates them from the batches
    ema_decay: float | None = None  # fine-tuning: validate and keep an exponential moving average of the weights
    drop_rate: float | None = None  # override the backbone's head dropout
    batch_size: int = 32
    # 32, not larger: on 2 CPU cores a frozen pass over 1,000 examples took 3.6 s at 32 against
    # 4.4 s at 128 (Lite0, 96 px) and 35.5 s against 41.5 s (all-mpnet-base-v2, sentences in length order)
    eval_batch_size: int = 32
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "auto"  # auto: bf16 on a GPU that supports it, else no
    num_workers: int = 0
    channels_last: bool = True  # images: NHWC memory layout (about 1.35x faster convolutions on CPU)
    seed: int = 0
    repeats: int = 1  # train K times with seeds seed, seed+1, ... (and their validation draws); keep the best on validation, report mean ± sd
    early_stopping_patience: int | None = 5  # epochs without validation improvement
    select_by: str = "val_loss"  # best epoch by val_loss (steadier on small validation sets), val_accuracy, or last (a fixed schedule)
    feature_cache: bool = True  # compute frozen features once and train the head on the cache
    feature_precision: str = "auto"  # the frozen feature pass: auto (mixed_precision on a GPU; bf16 for text on a CPU with native bf16; else fp32), fp32 or bf16
    cache_dir: str | None = None  # default: ~/.cache/tlhub/features

    # -- where results go -------------------------------------------------------------------------
    output_dir: str = "runs/default"
    resume: bool = True  # resume from the last checkpoint in output_dir when there is one
    overwrite: bool = False  # allow replacing the finished model or other run in output_dir (replaced only once this run has finished)
    example_top_k: int = 3  # the top-k prediction printed at the end
    pretrained: bool = True  # False: random init (baselines only)

    def __post_init__(self) -> None:
        _coerce_types(self)
        def bad(name, why, fix):
            raise ConfigError(f"{name}: {why}", fix=fix)

        if self.strategy not in STRATEGIES:
            from tlhub.errors import suggest

            close = suggest(self.strategy, STRATEGIES)
            bad("strategy", f"unknown strategy {self.strategy!r}", f"use one of {', '.join(STRATEGIES)}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        if self.mixed_precision not in MIXED_PRECISION:
            bad("mixed_precision", f"unknown value {self.mixed_precision!r}", f"use one of {', '.join(MIXED_PRECISION)}")
        if self.feature_precision not in FEATURE_PRECISION:
            bad("feature_precision", f"unknown value {self.feature_precision!r}", f"use one of {', '.join(FEATURE_PRECISION)}")
        if self.select_by not in ("val_loss", "val_accuracy", "last"):
            bad("select_by", f"unknown value {self.select_by!r}", "use 'val_loss', 'val_accuracy' or 'last'")
        if self.recipe not in ("fixed", "auto"):
            bad("recipe", f"unknown value {self.recipe!r}", "use 'fixed' (the options as given) or 'auto' (planned from the data and --budget)")
        if self.budget is not None:
            parse_budget(self.budget)  # a ConfigError that names the value
            if self.recipe != "auto":
                bad("budget", "a time budget needs --recipe auto, which plans the run to fit it", "add --recipe auto, or drop --budget")
        if self.class_weights not in ("auto", "balanced", "none"):
            bad("class_weights", f"unknown value {self.class_weights!r}", "use 'auto' (balanced above a 3:1 imbalance), 'balanced' or 'none'")
        if self.on_bad_input not in ("skip", "error"):
            bad("on_bad_input", f"unknown value {self.on_bad_input!r}", "use 'skip' or 'error'")
        if self.data_config is not None and not self.data_config.strip():
            bad("data_config", "is empty", "name one of the dataset's configurations, or leave data_config unset")
        for name in ("probe_epochs", "epochs"):
            if getattr(self, name) < 0:
                bad(name, "must be >= 0", f"set {name} to 0 or more")
        for name in ("batch_size", "eval_batch_size", "gradient_accumulation_steps", "unfreeze_every", "example_top_k", "repeats"):
            if getattr(self, name) < 1:
                bad(name, "must be >= 1", f"set {name} to 1 or more")
        for name in ("probe_lr", "lr"):
            if not getattr(self, name) > 0:
                bad(name, "must be > 0", f"set {name} to a positive learning rate such as 1e-3")
        if not 0 < self.layer_decay <= 1:
            bad("layer_decay", "must be in (0, 1]", "use 1.0 for a flat learning rate, 0.75 for a typical decay")
        if not 0 < self.validation_fraction < 1:
            bad("validation_fraction", "must be between 0 and 1", "use e.g. 0.1")
        if not 0 <= self.label_smoothing < 1:
            bad("label_smoothing", "must be in [0, 1)", "use 0 to disable, 0.1 typically")
        if not isinstance(self.feature_layers, str):  # YAML: feature_layers: [3, 5, 7]
            if not isinstance(self.feature_layers, (list, tuple)) or not self.feature_layers:
                bad("feature_layers", f"{self.feature_layers!r} is not last, all or a list of layer-group indices", "use last, all or e.g. 3,5,7")
            object.__setattr__(self, "feature_layers", ",".join(str(i) for i in self.feature_layers))
        self.feature_layers = self.feature_layers.strip().replace(" ", "")
        if self.feature_layers not in ("last", "all"):
            try:
                indices = [int(i) for i in self.feature_layers.split(",")]
            except ValueError:
                indices = None
            if not indices or any(i < 0 for i in indices) or len(set(indices)) != len(indices):
                bad("feature_layers", f"{self.feature_layers!r} is not last, all or distinct layer-group indices >= 0",
                    "use last, all or e.g. 3,5,7 (`tlhub describe BACKBONE` lists the groups, input first)")
            self.feature_layers = ",".join(str(i) for i in sorted(indices))
        if self.probe_solver not in ("logistic", "lbfgs", "adamw"):
            bad("probe_solver", f"unknown value {self.probe_solver!r}", "use 'logistic' (the default: converges for any feature scale) or 'adamw'")
        if not isinstance(self.layer_grid, int) or isinstance(self.layer_grid, bool) or not 1 <= self.layer_grid <= 4:
            bad("layer_grid", f"{self.layer_grid!r} is not a whole number from 1 to 4", "use 2 (the default: 2 x 2 cells) or 1 (one global average)")
        if self.layer_selection not in ("greedy", "none"):
            bad("layer_selection", f"unknown value {self.layer_selection!r}", "use 'greedy' or 'none'")
        if self.unfreeze == "auto" and self.strategy == "feature-extraction":
            bad("unfreeze", "auto chooses how many groups to fine-tune, and feature-extraction fine-tunes none", "use strategy lp-ft (or fine-tune) with unfreeze: auto")
        if self.unfreeze not in ("all", "auto"):
            try:
                if int(self.unfreeze) < 1:
                    raise ValueError
            except ValueError:
                bad("unfreeze", f"{self.unfreeze!r} is not 'all', 'auto' or a positive number", "use 'all', 'auto' or e.g. 2 (the last two layer groups)")
        if self.strategy == "feature-extraction" and self.probe_epochs == 0:
            bad("probe_epochs", "feature-extraction needs at least one epoch", "set probe_epochs >= 1")
        if self.strategy in ("fine-tune", "gradual-unfreeze") and self.epochs == 0:
            bad("epochs", f"strategy {self.strategy} needs at least one epoch", "set epochs >= 1")
        if self.auto_augment is not None and not (
            self.auto_augment == "trivialaugment" or self.auto_augment.startswith(("rand", "augmix", "original", "v0"))
        ):
            bad("auto_augment", f"unknown policy {self.auto_augment!r}", "use 'trivialaugment', a timm policy such as 'rand-m9-mstd0.5' or 'augmix', or none")
        if not 0 <= self.random_erasing <= 1:
            bad("random_erasing", "is a probability, in [0, 1]", "use 0 to disable, 0.25 typically")
        if self.clip_grad is not None and not self.clip_grad > 0:
            bad("clip_grad", "must be positive", "use e.g. 1.0, or leave it unset (none) not to clip")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            bad("ema_decay", "must be in (0, 1)", "use e.g. 0.998 (about the last 500 steps), or none to disable")
        if self.image_size is not None and self.image_size < 8:
            bad("image_size", "too small", "use at least 32 px")
        if self.image_size is not None and self.image_size > MAX_IMAGE_SIZE:
            # one 32-image batch of 3 x N x N floats at N = 4096 is 6 GB before the backbone runs
            bad("image_size", f"{self.image_size} px is beyond any backbone's input (at most {MAX_IMAGE_SIZE})",
                "use the backbone's own size (leave image_size unset) or e.g. 224-512 px; resize huge images beforehand")
        if self.crop_pct is not None and not 0 < self.crop_pct <= 1:
            bad("crop_pct", f"{self.crop_pct} is not a fraction in (0, 1]", "use e.g. 0.875 (the centre 87.5%), 1.0 for no crop, or leave it unset")
        if self.max_length is not None and self.max_length < 1:
            bad("max_length", f"{self.max_length} tokens leaves nothing of the text", "use e.g. 128 or 512, or leave it unset for the backbone's maximum")
        if self.drop_rate is not None and not 0 <= self.drop_rate < 1:
            bad("drop_rate", f"{self.drop_rate} is not a probability in [0, 1)", "use e.g. 0.2, 0 to disable, or leave it unset")
        if self.num_workers < 0:
            bad("num_workers", f"{self.num_workers} is negative", "use 0 (load data in the main process) or the number of worker processes, e.g. 4")
        for name in ("weight_decay", "probe_weight_decay", "warmup_epochs"):
            if getattr(self, name) < 0:
                bad(name, "must be >= 0", f"set {name} to 0 or more")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            bad("early_stopping_patience", "must be >= 1", "use e.g. 5, or none to run every epoch")
        if isinstance(self.output_dir, Path):
            self.output_dir = str(self.output_dir)
        if not isinstance(self.output_dir, str) or not self.output_dir.strip():
            # "" would write the run into the current folder, None fails deep inside the run
            bad("output_dir", f"{self.output_dir!r} names no folder", "pass --output-dir PATH (output_dir: runs/my-run in the YAML file)")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> "TrainConfig":
        import yaml

        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"config file {path} is a folder", fix="give the YAML file (e.g. config.yaml in that folder)")
        if not path.is_file():
            raise ConfigError(f"config file {path} not found", fix="check the path, or pass options on the command line")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"config file {path} is not UTF-8 text", fix="give a YAML file of 'option: value' lines") from None
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}", fix="check its permissions") from None
        try:
            # safe_load builds plain values only: a !!python/... tag is refused, never constructed or run
            data = yaml.safe_load(text) or {}
        except yaml.constructor.ConstructorError as exc:
            raise ConfigError(f"{path} uses a YAML tag that tlhub does not read ({exc.problem}); nothing in it was run",
                              fix="write plain values (text, numbers, true/false, lists): remove the !!tag") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}", fix="fix the YAML syntax") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of option: value", fix="write one 'option: value' per line")
        return cls.from_dict({**data, **overrides})  # an override given as None means None (the CLI passes only the options given)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        data = {k.replace("-", "_"): v for k, v in data.items()}
        unknown = sorted(set(data) - known)
        if unknown:
            from tlhub.errors import suggest

            hints = [f"{u!r} (did you mean {suggest(u, known)[0]!r}?)" if suggest(u, known) else repr(u) for u in unknown]
            raise ConfigError(f"unknown option(s): {', '.join(hints)}", fix="see `tlhub train --help` for the options")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if not isinstance(out["data"], str):  # an in-memory Dataset is described, not copied
            out["data"] = f"<in-memory {type(out['data']).__name__}>"
        return out

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def data_spec(self):
        """The :class:`tlhub.data.DataSpec` of this run: the same rows, fingerprints and feature-cache
        keys wherever it is built (training, the data doctor, benchmarks)."""
        from tlhub.data.loading import DataSpec

        return DataSpec(
            source=self.data, config_name=self.data_config, input_column=self.input_column, label_column=self.label_column,
            train_split=self.train_split, validation_split=self.validation_split, test_split=self.test_split,
            validation_fraction=self.validation_fraction, max_train_per_class=self.max_train_per_class,
            max_train_samples=self.max_train_samples, max_eval_samples=self.max_eval_samples,
            on_bad_input=self.on_bad_input, seed=self.seed,
        )

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def field_types() -> dict[str, type]:
    """The plain type of each field (``int`` for ``int | None``), for the CLI and coercion."""
    hints = get_type_hints(TrainConfig)
    out = {}
    for name, hint in hints.items():
        if get_origin(hint) in (Union, getattr(__import__("types"), "UnionType", Union)):
            args = [a for a in get_args(hint) if a is not type(None)]
            hint = args[0] if args else str
        out[name] = hint
    return out


def _coerce_types(config: TrainConfig) -> None:
    """YAML and the CLI give strings and ints where floats are meant: convert, or say what is wrong."""
    optional = {f.name for f in fields(config) if "None" in str(f.type)}
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, str) and value.lower() in ("none", "null") and f.name in optional:
            value = None  # how the command line says "unset", e.g. --early-stopping-patience none
            object.__setattr__(config, f.name, None)
        if value is None:
            continue
        target = field_types()[f.name]
        if target is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                    raise ConfigError(f"{f.name}: {value!r} is not a boolean", fix=f"use {f.name}: true or false")
                value = value.lower() in ("true", "yes", "1")
            elif not isinstance(value, bool):
                raise ConfigError(f"{f.name}: {value!r} is not a boolean", fix=f"use {f.name}: true or false")
        elif target in (int, float):
            if isinstance(value, bool):
                raise ConfigError(f"{f.name}: expected a number, got {value!r}", fix=f"give {f.name} a number")
            try:
                converted = target(value) if target is float else int(str(value)) if not isinstance(value, float) else int(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{f.name}: expected {target.__name__}, got {value!r}", fix=f"give {f.name} a {target.__name__}") from None
            if target is int and isinstance(value, float) and not value.is_integer():
                raise ConfigError(f"{f.name}: expected a whole number, got {value!r}", fix=f"give {f.name} a whole number")
            value = converted
        elif target is str and isinstance(value, (int, float)):
            value = str(value)  # YAML reads `unfreeze: 2` as a number; objects (an in-memory Dataset) stay
        object.__setattr__(config, f.name, value)


def field_help() -> dict[str, str]:
    """Per-field help text, taken from the comments in the class body."""
    import inspect
    import re

    out = {}
    for line in inspect.getsource(TrainConfig).splitlines():
        m = re.match(r"\s+(\w+): [^=]+= [^#]+#\s*(.+)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def feature_layer_indices(cfg: TrainConfig, num_groups: int) -> list[int]:
    """The layer-group indices ``cfg.feature_layers`` names, for a backbone of ``num_groups`` groups."""
    if cfg.feature_layers == "last":
        return [num_groups - 1]
    if cfg.feature_layers == "all":
        return list(range(num_groups))
    indices = [int(i) for i in cfg.feature_layers.split(",")]
    if max(indices) >= num_groups:
        raise ConfigError(f"feature_layers: {cfg.feature_layers} names group {max(indices)}, but the backbone has groups 0 to {num_groups - 1}",
                          fix=f"use indices from 0 to {num_groups - 1} (`tlhub describe BACKBONE` lists them)")
    return indices


def parse_budget(text: str | float | int | None) -> float | None:
    """``"5m"``, ``"90s"``, ``"1h"`` or a number of seconds -> seconds (``None`` stays ``None``)."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        value = str(text).strip().lower()
        units = {"s": 1, "m": 60, "h": 3600}
        try:
            seconds = float(value[:-1]) * units[value[-1]] if value[-1] in units else float(value)
        except (ValueError, IndexError):
            raise ConfigError(f"budget {text!r} is not a duration", fix="use e.g. 90s, 5m or 1h") from None
    if seconds <= 0:
        raise ConfigError(f"budget {text!r} is not positive", fix="use e.g. 90s, 5m or 1h")
    return seconds
