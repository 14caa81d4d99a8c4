"""The adapter conformance kit: one call that checks an adapter plugin against the contract.

::

    from tlhub.plugins.kit import check_adapter

    def test_my_adapter(tmp_path):
        check_adapter("my-adapter", "path/or/repo-of-a-small-backbone",
                      examples=["a.wav", "b.wav", "c.wav", "d.wav"], labels=["yes", "no"], tmp_dir=tmp_path)

``check_adapter`` runs every check below on a real backbone (no mocks), collects the results in
a :class:`ConformanceReport`, and raises :class:`ConformanceError` (an ``AssertionError``, so
pytest shows it as a test failure) listing every failed check with what to fix. Pass
``raise_on_failure=False`` to get the report instead; ``tlhub plugins check`` prints it.

===================  ========================================================================
check                what it verifies
===================  ========================================================================
entry_point          registered in the ``tlhub.adapters`` entry-point group, loads, passes the
                     registry's contract validation (name, modality, api_version, requires), no
                     name conflict; the registered class is the adapter under test. When the
                     entry point of a named adapter cannot be loaded, this is the one failure
                     (naming the entry point and its import error): every other check is
                     skipped ("skipped: entry point failed")
light_import         importing the adapter's module (what discovery does) imports no torch,
                     transformers, timm, datasets or gradio
load                 a new head (``labels``), the checkpoint as it is, and ``pretrained=False``
                     (same architecture, different weights) all load through tlhub.create_model
preprocessing        a :class:`Preprocessing` of the adapter's modality, with the fields that
                     modality needs; its fingerprint is stable
size_override        ``TransferModel.set_input_size(64)`` (image) / ``set_max_length(n)`` (text)
                     changes what ``Adapter.preprocessing(model)`` reports (``--image-size`` /
                     ``--max-length`` are not silently ignored); a model that cannot change it
                     raises ``ConfigError`` and the input-size checks are skipped
collate_size         after that override, ``make_collate`` (eval and training) gives 64 x 64
                     images / at most n tokens, and the model runs on them
features             decode_input + make_collate give a batch; forward_features is
                     (batch, num_features), finite and deterministic in eval mode; forward ==
                     forward_head(forward_features); the training collate works too
feature_spread       the features of different examples differ (their std across the batch is
                     not ~0), and so do the collated inputs
trainer_batch        the training batch is what the trainer reads: a dict of tensors keyed by
                     str, no ``labels`` key (the data loader adds it); image models name their
                     image tensor in ``TransferModel.image_key``, and the trainer's own random
                     erasing and horizontal flip (``tlhub.engine.trainer``) run on the batch
layer_groups         ordered input -> output (by first use in a forward pass), non-empty,
                     disjoint, excluding the head, covering every backbone parameter that
                     receives a gradient
layer_features       forward_layer_features over every group: one finite (batch, width_i)
                     tensor per group, the last equal to forward_features, a subset asked for
                     gives the same tensors, a ``layer_grid`` of 2 leaves the last group alone;
                     embedding_group() is a group index. An adapter that keeps the default
                     refusal (its last layer only) passes, and the check says so
freeze               freeze_backbone(0 / 1 / "all") makes exactly the head / head + last group /
                     head + all groups trainable; frozen BatchNorm keeps its statistics
train_step           a real optimisation step changes the head, gradients reach the backbone,
                     and a few AdamW steps on the examples' training batches lower the loss
                     below that of the best input-blind guess (the labels' own entropy)
save_reload          save_native, then tlhub.create_model(folder) picks this adapter by itself
                     and gives the same labels and identical logits
saved_preprocessing  a model with a changed input size / max length, saved by tlhub
                     (``tlhub.core.saving.save_model``: native files + ``tlhub.json``) and
                     reloaded with ``tlhub.create_model(folder)``, has the same
                     ``preprocessing()`` and logits (``Adapter.restore_preprocessing``)
predict              tlhub.predict top-k: k labels per input, valid and sorted scores, top-1 ==
                     argmax of the model's logits
space                space_spec(): the Gradio component exists and accepts its kwargs (gradio is
                     imported only here), requirements parse, the template renders; each example
                     survives the trip through a Space: written as a file of its kind, handed
                     over as that component hands it, decoded and predicted
===================  ========================================================================

Each failure names the method (or attribute) to fix.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

CHECKS = (
    "entry_point",
    "light_import",
    "load",
    "preprocessing",
    "size_override",
    "collate_size",
    "features",
    "feature_spread",
    "trainer_batch",
    "layer_groups",
    "layer_features",
    "freeze",
    "train_step",
    "save_reload",
    "saved_preprocessing",
    "predict",
    "space",
)
#: the detail of every other check when the adapter's entry point cannot be loaded
ENTRY_POINT_SKIP = "skipped: entry point failed"
#: the image size (px) the input-size checks ask for (96 when the model already uses 64)
OVERRIDE_IMAGE_SIZE = 64
#: the max length (tokens) the input-size checks ask for (12 when the model already uses 8)
OVERRIDE_MAX_LENGTH = 8
#: modules an adapter's own module must not import (tlhub imports every adapter at discovery)
HEAVY_MODULES = ("torch", "transformers", "timm", "datasets", "gradio", "accelerate", "sklearn")
#: what ``example_kind`` values tlhub's Space builder knows how to write
EXAMPLE_KINDS = ("image", "text", "audio")


class ConformanceError(AssertionError):
    """An adapter failed the conformance kit (an ``AssertionError``: pytest reports it as a failure)."""

    def __init__(self, report: "ConformanceReport"):
        self.report = report
        super().__init__(report.failure_message())


@dataclass
class CheckResult:
    name: str
    status: str  # passed | failed | skipped
    detail: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class ConformanceReport:
    adapter: str
    backbone: str
    results: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "failed"]

    def __getitem__(self, name: str) -> CheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    def summary(self) -> str:
        counts = {s: sum(r.status == s for r in self.results) for s in ("passed", "failed", "skipped")}
        return f"{self.adapter} on {self.backbone}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)

    def __str__(self) -> str:
        mark = {"passed": "PASS", "failed": "FAIL", "skipped": "skip"}
        width = max(len(c) for c in CHECKS)
        lines = [f"tlhub adapter conformance: {self.summary()}"]
        for run in _runs(self.results):
            r = run[0]
            if len(run) > 1:  # checks skipped for one reason (a failed entry point): one line, not one each
                lines.append(f"  skip  {len(run)} checks{'':<{width - 8}} {r.detail}: {', '.join(x.name for x in run)}")
                continue
            detail = r.detail.replace("\n", "\n" + " " * (width + 9))
            lines.append(f"  {mark[r.status]}  {r.name:<{width}} {detail}  [{r.seconds:.1f} s]")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def failure_message(self) -> str:
        parts = [f"adapter {self.adapter!r} failed {len(self.failures)} conformance check(s) on {self.backbone}:"]
        for r in self.failures:
            parts.append(f"- {r.name}: {r.detail}")
        parts.append("")
        parts.append(str(self))
        return "\n".join(parts)

    def raise_for_failures(self) -> "ConformanceReport":
        if self.failures:
            raise ConformanceError(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"adapter": self.adapter, "backbone": self.backbone, "ok": self.ok, "notes": self.notes,
                "results": [r.__dict__ for r in self.results]}


class _Skip(Exception):
    """Raised inside a check to mark it skipped (with the reason)."""


class _Fail(Exception):
    """Raised inside a check: the contract is broken (the message says how)."""


def _require(condition: Any, message: str) -> None:
    if not condition:
        raise _Fail(message)


# --------------------------------------------------------------------------------------------
# the kit


def check_adapter(
    adapter: "str | Any",
    backbone: str,
    examples: Sequence[Any],
    labels: Sequence[str],
    *,
    checks: Sequence[str] | None = None,
    skip: Sequence[str] = (),
    tmp_dir: str | os.PathLike | None = None,
    require_entry_point: bool = True,
    raise_on_failure: bool = True,
    atol: float = 1e-4,
    max_train_steps: int = 30,
    seed: int = 0,
) -> ConformanceReport:
    """Check ``adapter`` (its entry-point name, or an instance) on a real ``backbone``.

    ``examples``: at least two raw inputs of the adapter's modality, in any form its
    ``decode_input`` accepts (file paths, PIL images, strings, audio arrays). ``labels``: at least
    two class names; the examples get them round-robin as training targets. ``tmp_dir``: where the
    saved model and Space examples go (a temporary folder otherwise). ``checks``/``skip`` select
    checks by name (see :data:`CHECKS`); ``require_entry_point=False`` lets an adapter that is not
    pip-installed yet run everything that does not need the registry. The examples should be
    different inputs: ``feature_spread`` checks that they give different features.

    When ``adapter`` is a name whose entry point cannot be loaded (an import error, a contract
    violation, a name conflict, not installed), the report holds that one failure, naming the
    entry point and the error, and every other selected check is skipped (:data:`ENTRY_POINT_SKIP`).
    """
    import torch

    from tlhub.errors import ConfigError

    labels = [str(label) for label in labels]
    examples = list(examples)
    if len(labels) < 2:
        raise ConfigError("check_adapter needs at least two labels", fix="pass labels=['a', 'b', ...]")
    if len(examples) < 2:
        raise ConfigError("check_adapter needs at least two examples", fix="pass two or more example inputs of the adapter's modality")
    unknown = sorted((set(checks or ()) | set(skip)) - set(CHECKS))
    if unknown:
        raise ConfigError(f"unknown check(s) {unknown}; known: {', '.join(CHECKS)}", fix="name checks from that list")
    selected = [c for c in (checks or CHECKS) if c not in skip]

    kit = _Kit(adapter, backbone, examples, labels, atol=atol, max_train_steps=max_train_steps, seed=seed,
               require_entry_point=require_entry_point)
    report = ConformanceReport(kit.name, backbone)
    kit.report = report
    broken = kit.entry_point_failure()
    if broken is not None:
        # Nothing can run without the adapter: one failure that says why, not one per check.
        report.results.append(CheckResult("entry_point", "failed", broken))
        report.results += [CheckResult(name, "skipped", ENTRY_POINT_SKIP) for name in CHECKS if name in selected and name != "entry_point"]
        if raise_on_failure:
            report.raise_for_failures()
        return report
    with _tmp(tmp_dir) as tmp:
        kit.tmp = Path(tmp)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for name in CHECKS:
                if name not in selected:
                    continue
                started = time.perf_counter()
                try:
                    detail = getattr(kit, f"check_{name}")() or ""
                    result = CheckResult(name, "passed", detail)
                except _Skip as exc:
                    result = CheckResult(name, "skipped", str(exc))
                except _Fail as exc:
                    result = CheckResult(name, "failed", str(exc))
                except Exception as exc:  # the adapter raised: that is a failure of this check
                    tb = traceback.extract_tb(exc.__traceback__)
                    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
                    result = CheckResult(name, "failed", f"{type(exc).__name__}: {exc}{where}")
                result.seconds = time.perf_counter() - started
                report.results.append(result)
    if raise_on_failure:
        report.raise_for_failures()
    return report


def _runs(results: list[CheckResult]) -> list[list[CheckResult]]:
    """Consecutive results grouped when they are skipped for the same reason."""
    runs: list[list[CheckResult]] = []
    for r in results:
        if runs and r.status == "skipped" and runs[-1][-1].status == "skipped" and runs[-1][-1].detail == r.detail:
            runs[-1].append(r)
        else:
            runs.append([r])
    return runs


@contextlib.contextmanager
def _tmp(tmp_dir) -> Iterator[str]:
    if tmp_dir is not None:
        Path(tmp_dir).mkdir(parents=True, exist_ok=True)
        yield str(tmp_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="tlhub-conformance-") as tmp:
            yield tmp


@dataclass
class _Sized:
    """A model whose input size (image, px) or max length (text, tokens) the kit overrode."""

    model: Any
    before: Any  # its Preprocessing before the override
    what: str  # the call, as the messages show it
    size: int
    crop_pct: float | None = None


class _Kit:
    """The state shared by the checks (models are loaded once and reused)."""

    def __init__(self, adapter, backbone, examples, labels, *, atol, max_train_steps, seed, require_entry_point):
        from tlhub.adapters.contract import Adapter

        if isinstance(adapter, Adapter):
            self.instance = adapter
            self.name = str(getattr(adapter, "name", type(adapter).__name__))
        elif isinstance(adapter, type) and issubclass(adapter, Adapter):
            self.instance = adapter()
            self.name = str(getattr(adapter, "name", adapter.__name__))
        elif isinstance(adapter, str):
            self.instance = None
            self.name = adapter
        else:
            raise TypeError(f"adapter must be an entry-point name or an Adapter, not {type(adapter).__name__}")
        self.backbone = backbone
        self.examples = examples
        self.labels = labels
        self.targets = [i % len(labels) for i in range(len(examples))]
        self.atol = atol
        self.max_train_steps = max_train_steps
        self.seed = seed
        self.require_entry_point = require_entry_point
        self.registered = False
        self.info = None
        self.tmp: Path
        self.report: ConformanceReport
        self._model = None
        self._model_error: str | None = None
        self._decoded = None
        self.reloaded = None  # the model save_reload loaded back (predict and space use it)
        self._sized: _Sized | None = None
        self._sized_error: str | None = None

    # -- helpers -------------------------------------------------------------------------------
    @property
    def adapter(self):
        if self.instance is None:
            from tlhub.adapters.registry import get_adapter

            self.instance = get_adapter(self.name)  # raises with the registry's reason
        return self.instance

    def load(self, name: str | None = None, **kwargs):
        """Load through tlhub.create_model when the adapter is registered (the real path)."""
        from tlhub.core.factory import create_model

        if self._is_registered():
            return create_model(name or self.backbone, adapter=self.name if name is None else None, **kwargs)
        from tlhub.core.names import resolve

        source = resolve(name or self.backbone)
        return self.adapter.load(source, num_classes=kwargs.get("num_classes"), labels=kwargs.get("labels"),
                                 pretrained=kwargs.get("pretrained", True))

    def _is_registered(self) -> bool:
        from tlhub.adapters.registry import available

        working = available()
        if self.name not in working:
            return False
        return self.instance is None or type(working[self.name].adapter) is type(self.instance)

    def entry_point_failure(self) -> str | None:
        """Why the named adapter's entry point cannot be loaded (``None`` when it can, or when
        the adapter under test was passed as an instance)."""
        if self.instance is not None:
            return None
        from tlhub.adapters.registry import discover, get_adapter
        from tlhub.errors import TlhubError

        infos = [i for i in discover(refresh=True) if i.name == self.name]
        if any(i.status == "ok" for i in infos):
            return None
        if infos:
            i = infos[0]
            return (f"entry point {i.name!r} ({i.value} from {i.distribution} {i.version}) cannot be loaded, it is {i.status}: "
                    f"{i.error}" + (f" (fix: {i.fix})" if i.fix else ""))
        try:
            get_adapter(self.name)
        except TlhubError as exc:
            return f"{exc.message} (fix: {exc.fix})" if exc.fix else exc.message
        return None  # pragma: no cover - discover() and get_adapter() agree

    def model(self):
        """The model with a new head for ``labels`` (loaded once; a failure is reported by the
        first check that needs the model, and the others are skipped)."""
        if self._model_error is not None:
            raise _Skip(f"skipped: the model did not load ({self._model_error})")
        if self._model is None:
            import torch

            torch.manual_seed(self.seed)
            try:
                self._model = self.load(labels=self.labels)
            except Exception as exc:
                self._model_error = f"{type(exc).__name__}: {exc}".split("\n", 1)[0]
                raise
        return self._model

    def sized(self) -> "_Sized":
        """A second model (with the new head) whose input size / max length was overridden, as
        ``tlhub train --image-size/--max-length`` does. Skips when the model says it cannot
        change it (``ConfigError``)."""
        from tlhub.errors import ConfigError

        if self._sized_error is not None:
            raise _Skip(self._sized_error)
        self.model()  # a model that does not load is reported once, by the first check that loads it
        if self._sized is None:
            import torch

            modality = self.adapter.modality
            if modality not in ("image", "text"):
                self._sized_error = f"only image (set_input_size) and text (set_max_length) models have an input size to override; this is {modality}"
                raise _Skip(self._sized_error)
            torch.manual_seed(self.seed)
            model = self.load(labels=self.labels)
            before = self.adapter.preprocessing(model)
            try:
                if modality == "image":
                    size = OVERRIDE_IMAGE_SIZE if tuple((before.input_size or ())[-2:]) != (OVERRIDE_IMAGE_SIZE,) * 2 else 96
                    model.set_input_size(size)
                    sized = _Sized(model, before, f"model.set_input_size({size})", size)
                    crop_pct = 1.0 if before.crop_pct != 1.0 else 0.875
                    try:  # a model may change its size but not its crop (``--crop-pct`` is refused then)
                        model.set_input_size(None, crop_pct)
                        sized = _Sized(model, before, f"model.set_input_size({size}) and set_input_size(crop_pct={crop_pct})", size, crop_pct)
                    except ConfigError as exc:
                        self.report.notes.append(f"set_input_size refuses crop_pct ({exc.message}): only the size was checked")
                else:
                    n = OVERRIDE_MAX_LENGTH if before.max_length != OVERRIDE_MAX_LENGTH else 12
                    model.set_max_length(n)
                    sized = _Sized(model, before, f"model.set_max_length({n})", n)
            except ConfigError as exc:
                hook = "set_input_size" if modality == "image" else "set_max_length"
                self._sized_error = (f"TransferModel.{hook} is not supported by this model ({exc.message}): "
                                     f"`tlhub train --{'image-size' if modality == 'image' else 'max-length'}` refuses it")
                raise _Skip(self._sized_error) from None
            model.eval()
            self._sized = sized
        return self._sized

    def image_tensor(self, model, batch: dict, where: str = "Adapter.make_collate"):
        """The batch's image tensor, found through ``model.image_key`` as the trainer finds it."""
        key = model.image_key
        _require(isinstance(key, str) and key, f"TransferModel.image_key is {key!r}: an image model must name the batch key of its "
                                               "image tensor (what the trainer's augmentations act on), e.g. 'pixel_values'")
        _require(key in batch, f"TransferModel.image_key is {key!r}, but the batch of {where} has the keys {sorted(batch)}: "
                               "set image_key to the key make_collate writes the image tensor under")
        pixels = batch[key]
        _require(pixels.ndim == 4 and pixels.dtype.is_floating_point,
                 f"batch[{key!r}] from {where} is a {pixels.dtype} tensor of shape {tuple(pixels.shape)}: the image tensor must be "
                 "floats shaped (batch, channels, height, width)")
        return pixels

    def decoded(self) -> list[Any]:
        if self._decoded is None:
            self._decoded = [self.adapter.decode_input(x) for x in self.examples]
        return self._decoded

    def batch(self, model, *, train: bool = False, augment: bool = False, inputs: Sequence[Any] | None = None) -> dict:
        collate = self.adapter.make_collate(model, train=train, augment=augment)
        batch = collate(list(self.decoded() if inputs is None else inputs))
        _require(isinstance(batch, dict) and batch, f"make_collate(...)(inputs) must return a non-empty dict of tensors, got {type(batch).__name__}")
        import torch

        n = len(self.examples if inputs is None else inputs)
        for key, value in batch.items():
            _require(isinstance(value, torch.Tensor), f"collate output {key!r} is a {type(value).__name__}, not a torch.Tensor")
            _require(value.shape[:1] == (n,), f"collate output {key!r} has shape {tuple(value.shape)}: its first dimension must be the batch ({n})")
        return batch

    def targets_tensor(self):
        import torch

        return torch.tensor(self.targets, dtype=torch.long)

    # -- checks --------------------------------------------------------------------------------
    def check_entry_point(self) -> str:
        from tlhub.adapters.registry import ENTRY_POINT_GROUP, discover

        infos = [i for i in discover(refresh=True) if i.name == self.name]
        if not infos:
            message = (f"no entry point named {self.name!r} in the {ENTRY_POINT_GROUP!r} group: add "
                       f"[project.entry-points.\"{ENTRY_POINT_GROUP}\"] {self.name} = \"your_package.adapter:YourAdapter\" "
                       f"to pyproject.toml and pip install the package (pip install -e .)")
            if self.require_entry_point:
                raise _Fail(message)
            raise _Skip(message)
        bad = [i for i in infos if i.status != "ok"]
        if bad:
            i = bad[0]
            raise _Fail(f"entry point {i.value} of {i.distribution} {i.version} is {i.status}: {i.error} (fix: {i.fix})")
        info = infos[0]
        self.info = info
        if self.instance is not None and type(info.adapter) is not type(self.instance):
            raise _Fail(f"the entry point {self.name!r} loads {type(info.adapter).__module__}.{type(info.adapter).__qualname__}, "
                        f"not the adapter under test ({type(self.instance).__module__}.{type(self.instance).__qualname__}): "
                        "reinstall the package (pip install -e .) so the installed entry point is current")
        self.registered = True
        adapter = info.adapter
        _require(isinstance(adapter.allow_patterns, (list, tuple)) and all(isinstance(p, str) for p in adapter.allow_patterns),
                 "allow_patterns must be a tuple of glob strings")
        _require(isinstance(adapter.requires, (list, tuple)) and all(isinstance(p, str) for p in adapter.requires),
                 "requires must be a tuple of importable module names")
        return f"{info.distribution} {info.version}: {info.value} ({adapter.modality}, pipeline_tag {adapter.pipeline_tag}, library_name {adapter.library_name})"

    def check_light_import(self) -> str:
        if self.info is not None:
            module = self.info.value.split(":", 1)[0]
        else:
            module = type(self.adapter).__module__
        code = (
            "import importlib, json, sys\n"
            f"importlib.import_module({module!r})\n"
            f"print(json.dumps(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)))\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        _require(proc.returncode == 0, f"importing {module} in a fresh interpreter failed:\n{proc.stderr.strip()[-800:]}")
        heavy = json.loads(proc.stdout.strip().splitlines()[-1])
        _require(not heavy, f"importing {module} imports {', '.join(heavy)}: tlhub imports every adapter's module to list the plugins, "
                            "so move those imports into load()/make_collate()/... (import inside the function)")
        return f"import {module} pulls in none of {', '.join(HEAVY_MODULES)}"

    def check_load(self) -> str:
        from tlhub.adapters.model import TransferModel

        model = self.model()
        _require(isinstance(model, TransferModel), f"load() returned a {type(model).__name__}, not a tlhub.adapters.model.TransferModel")
        _require(model.labels == self.labels, f"model.labels is {model.labels!r}, not the labels asked for {self.labels!r}")
        _require(model.num_classes == len(self.labels), f"num_classes is {model.num_classes}, expected {len(self.labels)}")
        _require(model.adapter_name == self.name, f"model.adapter_name is {model.adapter_name!r}, must be the adapter's name {self.name!r}")
        _require(isinstance(getattr(model, "num_features", None), int) and model.num_features > 0,
                 f"num_features must be a positive int, got {getattr(model, 'num_features', None)!r}")
        _require(isinstance(model.source, str) and model.source, "model.source (the backbone it came from) must be set")

        as_is = self.load()  # the checkpoint as it is: its own head, or none
        _require(isinstance(as_is, TransferModel), "loading the checkpoint without labels did not return a TransferModel")
        _require(as_is.num_features == model.num_features,
                 f"num_features differs between the checkpoint as-is ({as_is.num_features}) and with a new head ({model.num_features})")
        own = f"its own head ({as_is.num_classes} classes)" if as_is.labels else "headless"

        random = self.load(labels=self.labels, pretrained=False)
        shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
        random_shapes = {n: tuple(p.shape) for n, p in random.named_parameters()}
        _require(shapes == random_shapes, "pretrained=False must build the same architecture (parameter names and shapes differ)"
                 + _diff(shapes, random_shapes))
        head = set(model.head_parameter_names())
        pretrained_params = dict(model.named_parameters())
        differs = [n for n, p in random.named_parameters() if n not in head and not _close(p, pretrained_params[n], 0.0)]
        _require(differs, "pretrained=False gave the same backbone weights as pretrained=True: it must re-initialise them")
        del as_is, random
        return f"new head: {model.num_classes} classes on {model.num_features} features; as-is: {own}; pretrained=False: same shapes, new weights"

    def check_preprocessing(self) -> str:
        from tlhub.adapters.contract import Preprocessing

        model = self.model()
        pre = self.adapter.preprocessing(model)
        _require(isinstance(pre, Preprocessing), f"preprocessing() returned a {type(pre).__name__}, not tlhub.adapters.Preprocessing")
        _require(pre.modality == self.adapter.modality, f"preprocessing().modality is {pre.modality!r}, the adapter's modality is {self.adapter.modality!r}")
        if pre.modality == "image":
            _require(pre.input_size and len(pre.input_size) == 3, f"image preprocessing needs input_size (C, H, W), got {pre.input_size!r}")
            _require(pre.mean and pre.std and len(pre.mean) == len(pre.std) == pre.input_size[0],
                     "image preprocessing needs mean and std with one value per channel")
        elif pre.modality == "text":
            _require(pre.tokenizer or pre.max_length, "text preprocessing needs the tokenizer and/or max_length")
        elif pre.modality == "audio":
            _require(isinstance(pre.sampling_rate, int) and pre.sampling_rate > 0, f"audio preprocessing needs sampling_rate (Hz), got {pre.sampling_rate!r}")
        fp = pre.fingerprint()
        _require(fp == self.adapter.preprocessing(model).fingerprint(), "preprocessing().fingerprint() is not stable between calls (it keys the feature cache)")
        json.dumps(pre.to_dict(), default=str)
        shown = {k: v for k, v in pre.to_dict().items() if k not in ("modality", "extra")}
        return f"{pre.modality}: " + ", ".join(f"{k}={v}" for k, v in shown.items())

    def check_size_override(self) -> str:
        sized = self.sized()
        model, before, what, wanted = sized.model, sized.before, sized.what, sized.size
        after = self.adapter.preprocessing(model)
        if self.adapter.modality == "image":
            _require(tuple((after.input_size or ())[-2:]) == (wanted, wanted),
                     f"TransferModel.set_input_size ignores the override: after {what}, Adapter.preprocessing(model).input_size is "
                     f"{after.input_size}, not (.., {wanted}, {wanted}) — set_input_size must change the size preprocessing() reports "
                     "(and make_collate uses), or raise tlhub.errors.ConfigError when the model cannot change it")
            _require(sized.crop_pct is None or after.crop_pct == sized.crop_pct,
                     f"TransferModel.set_input_size ignores crop_pct: after {what}, Adapter.preprocessing(model).crop_pct is "
                     f"{after.crop_pct}, not {sized.crop_pct}")
            shown = f"input_size {before.input_size} -> {after.input_size}, crop_pct {before.crop_pct} -> {after.crop_pct}"
        else:
            _require(after.max_length == wanted,
                     f"TransferModel.set_max_length ignores the override: after {what}, Adapter.preprocessing(model).max_length is "
                     f"{after.max_length} — set_max_length must change the max_length preprocessing() reports (and make_collate "
                     "truncates to), or raise tlhub.errors.ConfigError when the model cannot change it")
            shown = f"max_length {before.max_length} -> {after.max_length}"
        _require(after.fingerprint() != before.fingerprint(),
                 f"Adapter.preprocessing(model).fingerprint() did not change after {what}: the feature cache would reuse features "
                 "computed at the old size")
        return f"{what}: {shown}"

    def check_collate_size(self) -> str:
        import torch

        sized = self.sized()
        model, what, wanted = sized.model, sized.what, sized.size
        shapes = []
        for train in (False, True):
            where = f"Adapter.make_collate(model, train={train}{', augment=True' if train else ''})"
            batch = self.batch(model, train=train, augment=train)
            if self.adapter.modality == "image":
                pixels = self.image_tensor(model, batch, where)
                got = tuple(pixels.shape[-2:])
                _require(got == (wanted, wanted),
                         f"{where} ignores the model's input size: after {what} the batch is {got[0]}x{got[1]} px, not {wanted}x{wanted} "
                         "— build the transform from adapter.preprocessing(model) (or the model's current config), not from the "
                         "checkpoint's defaults")
                shapes.append(f"{'train' if train else 'eval'} {tuple(pixels.shape)}")
            else:
                long_text = self.adapter.decode_input(" ".join(str(x) for x in self.decoded()) * 4)
                batch = self.batch(model, train=train, augment=train, inputs=[long_text, *self.decoded()])
                lengths = {k: v.shape[1] for k, v in batch.items() if v.ndim >= 2}
                _require(lengths, f"{where} gives no (batch, length) tensor: {sorted(batch)}")
                too_long = {k: n for k, n in lengths.items() if n > wanted}
                _require(not too_long,
                         f"{where} ignores the model's max length: after {what} the batch holds {max(too_long.values()) if too_long else 0} "
                         f"tokens per text ({', '.join(too_long)}) — truncate to adapter.preprocessing(model).max_length")
                shapes.append(f"{'train' if train else 'eval'} {max(lengths.values())} tokens")
            with torch.inference_mode():
                logits = model.eval()(batch)
            _require(tuple(logits.shape) == (len(next(iter(batch.values()))), len(self.labels)),
                     f"the model gave logits of shape {tuple(logits.shape)} on the resized batch")
        return f"after {what}: " + ", ".join(shapes)

    def check_features(self) -> str:
        import torch

        model = self.model().eval()
        batch = self.batch(model)
        n = len(self.examples)
        with torch.inference_mode():
            f1 = model.forward_features(batch)
            f2 = model.forward_features(batch)
            logits = model(batch)
            head = model.forward_head(f1)
        _require(isinstance(f1, torch.Tensor), f"forward_features returned a {type(f1).__name__}, not a tensor")
        _require(tuple(f1.shape) == (n, model.num_features),
                 f"forward_features gave shape {tuple(f1.shape)}, expected (batch, num_features) = {(n, model.num_features)}")
        _require(f1.dtype.is_floating_point and torch.isfinite(f1).all(), "features must be finite floats")
        _require(_close(f1, f2, self.atol), "forward_features is not deterministic in eval mode (dropout left on?)")
        _require(tuple(logits.shape) == (n, len(self.labels)), f"model(batch) gave shape {tuple(logits.shape)}, expected {(n, len(self.labels))}")
        _require(_close(logits, head, self.atol),
                 f"model(batch) and forward_head(forward_features(batch)) differ by {_maxdiff(logits, head):.2e}: "
                 "the trainer caches features and trains forward_head on them, so they must agree")
        train_batch = self.batch(model, train=True, augment=True)
        _require(set(train_batch) == set(batch), f"the training collate returns keys {sorted(train_batch)}, the eval collate {sorted(batch)}")
        with torch.inference_mode():
            model(train_batch)
        return f"features {tuple(f1.shape)}, logits {tuple(logits.shape)}; batch keys {', '.join(sorted(batch))}"

    def check_feature_spread(self) -> str:
        import torch

        model = self.model().eval()
        batch = self.batch(model)
        # the inputs first: identical tensors for different examples are the collate's fault
        varying = [k for k, v in batch.items() if not _nearly_constant(v)]
        _require(varying, f"Adapter.make_collate gives the same tensor for every example (keys {sorted(batch)} are identical across "
                          "the batch): it must encode each input, not a blank or constant tensor")
        with torch.inference_mode():
            features = model.forward_features(batch).float()
        spread = float(features.std(0).mean())
        scale = float(features.abs().mean())
        _require(spread > 1e-4 * max(scale, 1e-12),
                 f"TransferModel.forward_features gives near-identical features for different examples (std across the batch "
                 f"{spread:.1e}, mean |feature| {scale:.1e}): the head cannot tell them apart — forward_features must read "
                 "the batch and pool over positions, not over the batch or into a constant")
        return f"std across {features.shape[0]} examples {spread:.3g} (mean |feature| {scale:.3g}); varying inputs: {', '.join(varying)}"

    def check_trainer_batch(self) -> str:
        import torch

        from tlhub.engine.trainer import _hflip, _RandomErasing

        model = self.model().eval()
        where = "Adapter.make_collate(model, train=True, augment=True)"
        collate = self.adapter.make_collate(model, train=True, augment=True)
        decoded = list(self.decoded())
        n = len(decoded)

        def check_batch(batch, what: str) -> None:
            _require(isinstance(batch, dict) and batch, f"{what} must return a non-empty dict of tensors, got {type(batch).__name__}")
            for key, value in batch.items():
                _require(isinstance(key, str), f"{what} returns a batch key {key!r}: the keys must be str (the model's forward reads them by name)")
                _require(isinstance(value, torch.Tensor), f"{what} returns {key!r} as a {type(value).__name__}: every value must be a torch.Tensor "
                                                          "(the trainer moves batches to the device tensor by tensor)")
                _require(value.shape[:1] == (n,), f"{what} returns {key!r} of shape {tuple(value.shape)}: its first dimension must be the batch ({n})")
            _require("labels" not in batch, f"{what} returns a 'labels' key: the data loader adds the targets under that name, so the "
                                            "collate must not use it")

        check_batch(collate(decoded), where)
        if self.adapter.modality != "image":
            with torch.inference_mode():
                model(collate(decoded))
            return f"keys {', '.join(sorted(collate(decoded)))}: a dict of ({n}, ...) tensors"
        key = model.image_key
        self.image_tensor(model, collate(decoded), where)
        try:  # the trainer's own augmentations, applied after the adapter's collate
            erased = _RandomErasing(collate, 1.0, key, self.name)(decoded)
        except Exception as exc:
            raise _Fail(f"tlhub's random erasing (tlhub.engine.trainer._RandomErasing) cannot read the batch of {where}: "
                        f"{type(exc).__name__}: {exc} — put the image tensor under TransferModel.image_key ({key!r})") from None
        check_batch(erased, "the batch after the trainer's random erasing")
        pixels = self.image_tensor(model, erased, "the trainer's random erasing")
        try:
            flipped = _hflip(erased, key)
        except Exception as exc:
            raise _Fail(f"tlhub's horizontal flip (tlhub.engine.trainer._hflip, used for the probe's second view) cannot read the batch "
                        f"of {where}: {type(exc).__name__}: {exc} — put the image tensor under TransferModel.image_key ({key!r})") from None
        _require(torch.equal(self.image_tensor(model, flipped, "the trainer's horizontal flip"), pixels.flip(-1)),
                 f"the trainer's horizontal flip did not flip batch[{key!r}]: TransferModel.image_key must name the image tensor the model reads")
        with torch.inference_mode():
            logits = model(flipped)
            features = model.forward_features(flipped)
        _require(tuple(logits.shape) == (n, len(self.labels)) and tuple(features.shape) == (n, model.num_features),
                 f"the model gave logits {tuple(logits.shape)} / features {tuple(features.shape)} on the augmented batch")
        return f"image_key {key!r} {tuple(pixels.shape)}; the trainer's random erasing and horizontal flip run on it"

    def check_layer_groups(self) -> str:
        import torch

        from tlhub.adapters.model import LayerGroup

        model = self.model()
        groups = model.layer_groups()
        _require(isinstance(groups, list) and groups, "layer_groups() must return a non-empty list of LayerGroup")
        _require(all(isinstance(g, LayerGroup) for g in groups), "layer_groups() must return tlhub.adapters.model.LayerGroup objects")
        names = [g.name for g in groups]
        _require(len(set(names)) == len(names), f"layer group names must be unique: {names}")
        params = dict(model.named_parameters())
        head = set(model.head_parameter_names())
        _require(head, "head_parameter_names() is empty: the head must have parameters")
        _require(head <= set(params), f"head_parameter_names() names unknown parameters: {sorted(head - set(params))[:5]}")
        seen: dict[str, str] = {}
        for g in groups:
            _require(g.parameter_names, f"layer group {g.name!r} is empty")
            for p in g.parameter_names:
                _require(p in params, f"layer group {g.name!r} names {p!r}, which is not a parameter of the model")
                _require(p not in head, f"layer group {g.name!r} holds the head parameter {p!r}: groups are the backbone only")
                _require(p not in seen, f"parameter {p!r} is in two layer groups: {seen.get(p)!r} and {g.name!r}")
                seen[p] = g.name

        # which parameters a full backward reaches, and in which order modules first run
        order: dict[int, int] = {}
        hooks = []
        owners: dict[str, int] = {}
        for mod_name, module in model.named_modules():
            direct = list(module.named_parameters(recurse=False))
            if not direct or any(any(True for _ in c.parameters()) for c in module.children()):
                continue  # a container's own parameters (e.g. wav2vec2's masked_spec_embed) say nothing about order
            for pname, _ in direct:
                owners[f"{mod_name}.{pname}" if mod_name else pname] = id(module)
            hooks.append(module.register_forward_pre_hook(_first_use_hook(order, id(module))))
        saved = {n: p.requires_grad for n, p in params.items()}
        try:
            for p in params.values():
                p.requires_grad_(True)
            model.zero_grad(set_to_none=True)
            model.eval()
            loss = torch.nn.functional.cross_entropy(model(self.batch(model)), self.targets_tensor())
            loss.backward()
        finally:
            for h in hooks:
                h.remove()
            for n, p in params.items():
                p.requires_grad_(saved[n])
        with_grad = {n for n, p in params.items() if p.grad is not None}
        model.zero_grad(set_to_none=True)
        orphans = sorted(with_grad - set(seen) - head)
        _require(not orphans, f"{len(orphans)} backbone parameter(s) receive gradients but are in no layer group, so freezing and "
                              f"layer-wise learning rates miss them: {', '.join(orphans[:5])}{' ...' if len(orphans) > 5 else ''}")
        first_use = []
        for g in groups:
            uses = [order[owners[p]] for p in g.parameter_names if owners.get(p) in order]
            first_use.append(min(uses) if uses else None)
        known = [(g.name, u) for g, u in zip(groups, first_use) if u is not None]
        for (a, ua), (b, ub) in zip(known, known[1:]):
            _require(ua <= ub, f"layer groups must be ordered input -> output, but {b!r} runs before {a!r} in a forward pass")
        unused = sorted(set(params) - set(seen) - head)
        if unused:
            self.report.notes.append(f"{len(unused)} parameter(s) are in no layer group and stay frozen (unused by the forward pass: "
                                     f"{', '.join(unused[:3])}{' ...' if len(unused) > 3 else ''})")
        return f"{len(groups)} groups ({names[0]} ... {names[-1]}), {len(seen)} backbone + {len(head)} head parameters"

    def check_layer_features(self) -> str:
        import torch

        from tlhub.adapters.model import LAST_LAYER_ONLY
        from tlhub.errors import ConfigError

        model = self.model().eval()
        batch = self.batch(model)
        n = len(self.examples)
        groups = list(range(len(model.layer_groups())))
        embedding = model.embedding_group()
        _require(isinstance(embedding, int) and 0 <= embedding < len(groups),
                 f"TransferModel.embedding_group() returned {embedding!r}, not a layer-group index from 0 to {len(groups) - 1}")
        with torch.inference_mode():
            try:
                every = model.forward_layer_features(batch, groups)
            except ConfigError as exc:
                # the contract's default refusal: fine, the adapter offers its last layer only
                _require(LAST_LAYER_ONLY in exc.message,
                         f"forward_layer_features refused the layer groups {groups} ({exc.message}): feature_layers: all asks for "
                         "every group, so each must give its pooled output (or keep TransferModel's default refusal)")
                return f"last layer only (forward_layer_features keeps the contract's refusal; {len(groups)} groups)"
            own = model.forward_features(batch)
            ends = model.forward_layer_features(batch, [groups[0], groups[-1]])
        _require(isinstance(every, (list, tuple)) and len(every) == len(groups),
                 f"forward_layer_features(batch, {groups}) must return one tensor per requested group, got "
                 f"{len(every) if isinstance(every, (list, tuple)) else type(every).__name__}")
        widths = []
        for g, f in zip(groups, every):
            _require(isinstance(f, torch.Tensor) and f.dim() == 2 and f.shape[0] == n,
                     f"forward_layer_features gave group {g} a {tuple(getattr(f, 'shape', ()))} output: each must be pooled to (batch, width)")
            _require(f.dtype.is_floating_point and torch.isfinite(f).all(), f"forward_layer_features gave group {g} non-finite values")
            widths.append(int(f.shape[1]))
        _require(_close(every[-1], own, self.atol),
                 f"the last group's features differ from forward_features by {_maxdiff(every[-1], own):.2e}: they must be the same "
                 "(a head over several layers reads the last group where the native head reads forward_features)")
        _require(len(ends) == 2 and _close(ends[0], every[0], self.atol) and _close(ends[1], every[-1], self.atol),
                 "forward_layer_features gives other values for a group when fewer groups are asked for: each group's features "
                 "must not depend on which others are requested")
        previous = model.layer_grid
        try:
            model.layer_grid = 2
            with torch.inference_mode():
                gridded = model.forward_layer_features(batch, groups)
        finally:
            model.layer_grid = previous
        _require(_close(gridded[-1], every[-1], self.atol),
                 "with layer_grid 2 the last group's features changed: forward_layer_features must give the last group exactly "
                 "forward_features whatever self.layer_grid is (the grid pools only the maps of the groups before it)")
        pooled = [g for g, a, b in zip(groups, widths, gridded) if int(b.shape[1]) != a]
        return (f"{len(groups)} groups, widths {widths}; embedding group {embedding}; layer_grid 2 widens "
                + (f"groups {pooled}" if pooled else "no group (outputs not spatial)"))

    def check_freeze(self) -> str:
        import torch

        model = self.model()
        groups = model.layer_groups()
        head = set(model.head_parameter_names())
        params = dict(model.named_parameters())

        def trainable() -> set[str]:
            return {n for n, p in params.items() if p.requires_grad}

        try:
            model.freeze_backbone(0)
            _require(trainable() == head, "freeze_backbone(0) must leave exactly the head trainable" + _setdiff(trainable(), head))
            model.freeze_backbone(1)
            want = head | set(groups[-1].parameter_names)
            _require(trainable() == want, "freeze_backbone(1) must leave the head and the last layer group trainable" + _setdiff(trainable(), want))
            model.freeze_backbone("all")
            want = head | {p for g in groups for p in g.parameter_names}
            _require(trainable() == want, "freeze_backbone('all') must make the head and every layer group trainable" + _setdiff(trainable(), want))

            # frozen BatchNorm layers must not update their running statistics
            model.freeze_backbone(0)
            model.train()
            norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                     and any(True for _ in m.parameters(recurse=False)) and not any(p.requires_grad for p in m.parameters(recurse=False))]
            if norms:
                _require(all(not m.training for m in norms), "after freeze_backbone(0) and train(), frozen BatchNorm layers must be in eval mode")
                before = [b.detach().clone() for m in norms for b in m.buffers()]
                with torch.no_grad():
                    model(self.batch(model))
                after = [b for m in norms for b in m.buffers()]
                _require(all(torch.equal(x, y) for x, y in zip(before, after)), "a forward pass in train mode changed the statistics of frozen BatchNorm layers")
        finally:
            model.freeze_backbone("all")
            model.eval()
        return f"0 -> {len(head)} head params; 1 -> + {groups[-1].name}; all -> + {len(groups)} groups" + (f"; {len(norms)} frozen BatchNorm layers keep their statistics" if norms else "")

    def check_train_step(self) -> str:
        import torch

        model = self.model()
        head = set(model.head_parameter_names())
        params = dict(model.named_parameters())
        group_params = {p for g in model.layer_groups() for p in g.parameter_names if p in params} - head
        batch = self.batch(model)
        targets = self.targets_tensor()
        loss_fn = torch.nn.CrossEntropyLoss()

        def train_mode() -> None:
            model.train()
            for m in model.modules():  # a handful of examples: keep BatchNorm statistics as they are
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()

        def eval_loss() -> float:
            model.eval()
            with torch.no_grad():
                return float(loss_fn(model(batch), targets))

        # 1. gradients flow: to every head tensor, and through the features into the backbone
        model.freeze_backbone("all")
        train_mode()
        model.zero_grad(set_to_none=True)
        loss_fn(model(batch), targets).backward()
        missing = [n for n in head if params[n].grad is None]
        _require(not missing, f"head parameters got no gradient: {missing[:3]}")
        reached = [n for n in group_params if params[n].grad is not None and params[n].grad.abs().sum() > 0]
        _require(reached, "no backbone parameter received a gradient: forward_features must not detach or run under no_grad")
        model.zero_grad(set_to_none=True)

        # 2. train a new head (started as the trainer starts it) with the backbone, on the training
        # collate's batches of the examples (what the trainer feeds), measured on the eval batch
        model.init_head()
        start = eval_loss()
        # the best an input-blind model can do is predict the label frequencies: beating that
        # (not just drifting below the uniform start) shows the model learns from its inputs
        counts = torch.bincount(targets, minlength=len(self.labels)).float()
        freq = counts[counts > 0] / counts.sum()
        blind = float(-(freq * freq.log()).sum())
        goal = blind - max(0.05 * blind, 1e-3)
        train_collate = self.adapter.make_collate(model, train=True, augment=False)
        _require(math.isfinite(start), f"the loss of the untrained model is not finite ({start})")
        optimizer = torch.optim.AdamW([
            {"params": [params[n] for n in head], "lr": 1e-2},
            {"params": [params[n] for n in group_params if params[n].requires_grad], "lr": 1e-4},
        ], weight_decay=0.0)
        before = {n: p.detach().clone() for n, p in params.items()}
        losses = []
        for step in range(self.max_train_steps):
            train_mode()
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(train_collate(list(self.decoded()))), targets)
            _require(torch.isfinite(loss), f"training loss is not finite at step {step}")
            loss.backward()
            optimizer.step()
            if step == 0:
                changed = [n for n in head if not torch.equal(params[n].detach(), before[n])]
                _require(changed, "one optimisation step did not change any head parameter (after TransferModel.init_head(): "
                                  "a head of several layers must not start all at zero; head_parameter_names() must list the head)")
            losses.append(eval_loss())
            # measured in eval mode: a real decrease, not dropout noise; and every head tensor moved
            if losses[-1] < goal and all(not torch.equal(params[n].detach(), before[n]) for n in head):
                break
        model.eval()
        _require(min(losses) < goal,
                 f"the loss does not move: {len(losses)} AdamW steps on the {len(self.examples)} examples took it from {start:.4f} to "
                 f"{min(losses):.4f}, not below {goal:.4f} (the labels' entropy {blind:.4f} is what an input-blind model reaches) — "
                 "TransferModel.forward_head must use the features, forward_features must depend on the batch (see feature_spread), "
                 "and head_parameter_names() must list every head parameter")
        stuck = [n for n in head if torch.equal(params[n].detach(), before[n])]
        _require(not stuck, f"head parameter(s) {stuck[:4]} never changed in {len(losses)} steps after init_head(): "
                            "a head of several layers must not start with all of them at zero, or no gradient reaches them")
        return (f"loss {start:.4f} -> {losses[-1]:.4f} in {len(losses)} step(s) (input-blind best {blind:.4f}); every head tensor "
                "changed, gradients reached the backbone")

    def check_save_reload(self) -> str:
        import torch

        from tlhub.core.factory import create_model

        model = self.model().eval()
        folder = self.tmp / f"saved-{self.name}"
        folder.mkdir(parents=True, exist_ok=True)
        written = self.adapter.save_native(model, str(folder))
        _require(isinstance(written, (list, tuple)) and all(isinstance(f, str) for f in written),
                 "save_native must return the list of file names it wrote")
        missing = [f for f in written if not (folder / f).exists()]
        _require(not missing, f"save_native says it wrote {missing}, which do not exist")
        _require((folder / "config.json").is_file(), "save_native must write a config.json (tlhub.create_model reads it to pick the adapter)")
        if self._is_registered():
            try:
                reloaded = create_model(str(folder))
            except Exception as exc:
                raise _Fail(f"tlhub.create_model({str(folder)!r}) failed: {type(exc).__name__}: {exc}") from None
            _require(reloaded.adapter_name == self.name,
                     f"tlhub.create_model(saved folder) picked the {reloaded.adapter_name!r} adapter, not {self.name!r}: make claims() "
                     f"recognise the saved config.json, e.g. write \"tlhub_adapter\": \"{self.name}\" into it in save_native "
                     "(tlhub honours that marker before preferring the built-in adapters)")
            how = "tlhub.create_model(folder) auto-detected the adapter"
        else:
            from tlhub.core.names import resolve

            reloaded = self.adapter.load(resolve(str(folder)))
            how = "adapter.load (not registered: auto-detection not checked)"
        _require(reloaded.labels == model.labels, f"reloaded labels {reloaded.labels!r} differ from the saved model's {model.labels!r}")
        reloaded.eval()
        with torch.inference_mode():
            a = model(self.batch(model))
            b = reloaded(self.batch(reloaded))
        _require(_close(a, b, self.atol), f"the reloaded model's logits differ from the saved model's by {_maxdiff(a, b):.2e} (tolerance {self.atol:g})")
        self.reloaded = reloaded
        return f"{len(written)} files; {how}; logits identical (max diff {_maxdiff(a, b):.1e})"

    def check_saved_preprocessing(self) -> str:
        import torch

        from tlhub.core.factory import create_model
        from tlhub.core.saving import save_model

        if not self._is_registered():
            raise _Skip("tlhub's saving looks the adapter up by name: pip install the plugin to check it")
        try:
            sized = self.sized()
            model, what = sized.model, sized.what
        except _Skip as exc:  # no override possible: the default preprocessing must still come back
            model, what = self.model().eval(), None
            self.report.notes.append(f"saved_preprocessing checked the default preprocessing only ({exc})")
        saved = self.adapter.preprocessing(model)
        folder = self.tmp / f"saved-by-tlhub-{self.name}"
        save_model(model, folder)  # the model's own record: what `tlhub train` writes, minus the run
        try:
            reloaded = create_model(str(folder))
        except Exception as exc:
            raise _Fail(f"tlhub.create_model({str(folder)!r}) failed on a folder written by tlhub.core.saving.save_model: "
                        f"{type(exc).__name__}: {exc}") from None
        restored = self.adapter.preprocessing(reloaded)
        # ``tokenizer`` says where the tokenizer files are (now the saved folder), not what they
        # do: the collated batches, compared below, show whether the tokenisation came back
        a_dict, b_dict = ({k: v for k, v in pre.to_dict().items() if k != "tokenizer"} for pre in (saved, restored))
        changed = {k: (a_dict.get(k), b_dict.get(k)) for k in set(a_dict) | set(b_dict) if a_dict.get(k) != b_dict.get(k)}
        _require(not changed,
                 "the preprocessing is not restored on reload: after tlhub.core.saving.save_model and tlhub.create_model(folder), "
                 "Adapter.preprocessing gives " + ", ".join(f"{k}={b!r} (saved {a!r})" for k, (a, b) in changed.items())
                 + (f" after {what}" if what else "")
                 + " — implement Adapter.restore_preprocessing(model, saved) to apply the Preprocessing tlhub recorded in tlhub.json "
                   "(or write it in save_native where load() reads it back)")
        reloaded.eval()
        batch, batch_reloaded = self.batch(model), self.batch(reloaded)
        differs = sorted(k for k in set(batch) | set(batch_reloaded)
                         if k not in batch or k not in batch_reloaded or not _close(batch[k], batch_reloaded[k], 0.0))
        _require(not differs, f"after save_model and tlhub.create_model(folder), Adapter.make_collate gives a different batch "
                              f"({', '.join(differs)} differ{'s' if len(differs) == 1 else ''})" + (f" than after {what}" if what else "")
                              + " — implement Adapter.restore_preprocessing(model, saved), and build the collate from adapter.preprocessing(model)")
        with torch.inference_mode():
            a, b = model(batch), reloaded(batch_reloaded)
        _require(_close(a, b, self.atol), f"the reloaded model's logits differ from the saved model's by {_maxdiff(a, b):.2e} "
                                          f"(tolerance {self.atol:g}) at the restored preprocessing")
        shown = {k: v for k, v in restored.to_dict().items() if k in ("input_size", "crop_pct", "max_length", "sampling_rate")}
        return (f"after {what}, " if what else "") + "save_model + create_model: " + ", ".join(f"{k}={v}" for k, v in shown.items()) + "; logits identical"

    def check_predict(self) -> str:
        import torch

        if not self._is_registered():
            raise _Skip("tlhub.predict looks the adapter up by name: pip install the plugin to check it")
        from tlhub.core.prediction import Predictor

        model = self.reloaded or self.model()
        model.eval()
        k = min(3, len(self.labels))
        predictor = Predictor(model, device="cpu")
        results = predictor(self.examples, top_k=k)
        _require(len(results) == len(self.examples), f"predict returned {len(results)} results for {len(self.examples)} inputs")
        with torch.inference_mode():
            argmax = model(self.batch(model)).argmax(-1).tolist()
        for i, preds in enumerate(results):
            _require(len(preds) == k, f"predict returned {len(preds)} labels for top_k={k}")
            scores = [p.score for p in preds]
            _require(all(p.label in self.labels for p in preds), f"predicted labels {[p.label for p in preds]} are not among {self.labels}")
            _require(all(0.0 <= s <= 1.0 + 1e-6 for s in scores) and scores == sorted(scores, reverse=True),
                     f"scores must be probabilities in decreasing order, got {scores}")
            _require(preds[0].label == self.labels[argmax[i]], f"input {i}: top-1 {preds[0].label!r} is not the argmax of the logits ({self.labels[argmax[i]]!r})")
        return f"top-{k} for {len(results)} inputs, e.g. " + ", ".join(str(p) for p in results[0])

    def check_space(self) -> str:
        from tlhub.adapters.contract import SpaceSpec

        spec = self.adapter.space_spec()
        _require(isinstance(spec, SpaceSpec), f"space_spec() returned a {type(spec).__name__}, not tlhub.adapters.SpaceSpec")
        _require(spec.example_kind in EXAMPLE_KINDS, f"example_kind {spec.example_kind!r} is not one of {EXAMPLE_KINDS}")
        for req in spec.requirements:
            _require(_valid_requirement(req), f"requirement {req!r} is not a valid pip requirement")
        if spec.template is not None:
            template = Path(spec.template)
            _require((template / "classifier.py").is_file() or (template / "app.py").is_file(),
                     f"SpaceSpec.template {template} has neither classifier.py (load_classifier, filled into tlhub's app) nor an app.py of its own")
            _render_template(template, spec)
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        import gradio as gr  # only here: importing gradio takes seconds

        component_cls = getattr(gr, spec.input_component, None)
        _require(isinstance(component_cls, type) and issubclass(component_cls, gr.components.Component),
                 f"gradio has no component {spec.input_component!r} (gradio {gr.__version__})")
        try:
            component = component_cls(**spec.input_kwargs)
        except Exception as exc:
            raise _Fail(f"gr.{spec.input_component}(**{spec.input_kwargs!r}) fails: {type(exc).__name__}: {exc}") from None

        # every example, the way a Space sees it: a file (or text) -> the component's value
        model = self.reloaded or self.model()
        folder = self.tmp / f"space-examples-{self.name}"
        values = [_component_value(spec, component, _write_example(spec.example_kind, d, folder, i))
                  for i, d in enumerate(self.decoded())]
        decoded = [self.adapter.decode_input(v) for v in values]
        import torch

        model.eval()
        with torch.inference_mode():
            logits = model(self.batch(model, inputs=decoded))
        _require(torch.isfinite(logits).all(), "predictions on the Space's examples are not finite")
        kind = type(values[0]).__name__
        served = ""
        if spec.template is not None and (Path(spec.template) / "classifier.py").is_file() and not (Path(spec.template) / "app.py").is_file():
            # one example at a time, as the Space answers (a padded batch can shift the logits of
            # models with attention masks)
            with torch.inference_mode():
                single = torch.cat([model(self.batch(model, inputs=[d])) for d in decoded]).softmax(-1)
            served = "; " + self._check_classifier(Path(spec.template) / "classifier.py", values, single)
        return (f"gr.{spec.input_component}({', '.join(f'{k}={v!r}' for k, v in spec.input_kwargs.items())}); "
                f"{len(values)} {spec.example_kind} examples round-trip as {kind}"
                + (f"; template {Path(spec.template).name}" if spec.template else "") + served)

    def _check_classifier(self, path: Path, values: list, probs) -> str:
        """Run the template's ``load_classifier`` on the folder save_reload wrote, as the Space's
        app would on ./model, and compare its answers with the model's own probabilities."""
        import importlib.util

        folder = self.tmp / f"saved-{self.name}"
        if not (folder / "config.json").is_file():
            return "classifier.py not run (save_reload did not run)"
        spec = importlib.util.spec_from_file_location(f"_tlhub_kit_classifier_{self.name}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
            answer = module.load_classifier(str(folder), True)
            served = [answer(v) for v in values]
        except Exception as exc:
            raise _Fail(f"{path}: load_classifier({str(folder)!r}, True) or its function failed on a Space example: "
                        f"{type(exc).__name__}: {exc}") from None
        labels = list(self.labels)
        for i, got in enumerate(served):
            _require(isinstance(got, dict) and set(got) == set(labels),
                     f"{path}: the function load_classifier returns must give {{label: probability}} over every label {labels}, got {got!r}")
            want = probs[i].tolist()
            worst = max(abs(float(got[label]) - want[j]) for j, label in enumerate(labels))
            # the Space decodes with its own libraries (an audio resampler, an image library's
            # resize), so a few thousandths are allowed; a wrong model, label order or
            # preprocessing is off by far more
            _require(worst < CLASSIFIER_TOLERANCE, f"{path}: example {i}: its probabilities differ from the model's by {worst:.2e} "
                                   f"({ {k: round(float(v), 4) for k, v in got.items()} } against {dict(zip(labels, [round(w, 4) for w in want]))})")
        return f"classifier.py's answers on ./model match the model's probabilities"


# --------------------------------------------------------------------------------------------
# helpers


#: how far (in probability) a Space template's ``load_classifier`` may be from the model itself
CLASSIFIER_TOLERANCE = 0.02


def _first_use_hook(order: dict[int, int], key: int):
    def hook(module, args):  # must return None: a pre-hook's return value replaces the inputs
        order.setdefault(key, len(order))

    return hook


def _nearly_constant(tensor) -> bool:
    """True when every example of a batch tensor is (almost) the same."""
    if tensor.shape[0] < 2:
        return False
    t = tensor.detach().float().reshape(tensor.shape[0], -1)
    return bool((t - t[:1]).abs().max() <= 1e-6 * max(float(t.abs().max()), 1e-12))


def _close(a, b, atol: float) -> bool:
    import torch

    if a.shape != b.shape:
        return False
    a, b = a.detach().float(), b.detach().float()
    return bool(torch.allclose(a, b, atol=atol, rtol=atol))


def _maxdiff(a, b) -> float:
    return float((a.detach().float() - b.detach().float()).abs().max()) if a.shape == b.shape else float("inf")


def _diff(a: dict, b: dict) -> str:
    only_a = sorted(set(a) - set(b))[:3]
    only_b = sorted(set(b) - set(a))[:3]
    shape = sorted(n for n in set(a) & set(b) if a[n] != b[n])[:3]
    parts = []
    if only_a:
        parts.append(f"only pretrained: {only_a}")
    if only_b:
        parts.append(f"only random: {only_b}")
    if shape:
        parts.append(f"shapes differ: {shape}")
    return " (" + "; ".join(parts) + ")" if parts else ""


def _setdiff(got: set, want: set) -> str:
    extra = sorted(got - want)[:3]
    missing = sorted(want - got)[:3]
    return (f" (also trainable: {extra})" if extra else "") + (f" (not trainable: {missing})" if missing else "")


def _valid_requirement(text: str) -> bool:
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover
        return bool(text.strip())
    try:
        Requirement(text)
        return True
    except InvalidRequirement:
        return False


def _render_template(template: Path, spec) -> None:
    """Compose the Space's app.py from the template and render it and the template's other Python
    files with dummy values, as ``tlhub space`` does: they must compile."""
    try:
        from tlhub.publishing.spaces import CLASSIFIER, compose_app, render_python
    except ImportError:  # pragma: no cover - spaces not part of this build
        return
    values = {"MODEL_ID": "user/model", "TITLE": "t", "DESCRIPTION": "d", "TOP_K": 3, "EXAMPLES": [],
              "INPUT_COMPONENT": spec.input_component, "INPUT_KWARGS": dict(spec.input_kwargs), "EXAMPLE_KIND": spec.example_kind}
    sources = [(template / "app.py", lambda: compose_app(template))]
    sources += [(py, py.read_text) for py in template.rglob("*.py") if py.name not in ("app.py", CLASSIFIER)]
    for py, read in sources:
        try:
            render_python(read(), values, filename=py.name)
        except Exception as exc:
            raise _Fail(f"Space template {py}: {getattr(exc, 'message', exc)}") from None


def _write_example(kind: str, value: Any, folder: Path, index: int) -> Any:
    """What ``tlhub space`` stores for an example: a PNG/WAV file, or the text itself."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "text":
        _require(isinstance(value, str), f"text examples must decode to str, got {type(value).__name__}")
        return value
    if kind == "image":
        _require(hasattr(value, "save"), f"image examples must decode to PIL images, got {type(value).__name__}")
        path = folder / f"{index:02d}.png"
        value.save(path)
        return str(path)
    if kind == "audio":
        path = folder / f"{index:02d}.wav"
        write_wav(path, value)
        return str(path)
    raise _Fail(f"unknown example_kind {kind!r}")


def write_wav(path: str | os.PathLike, value: Any, default_rate: int = 16000) -> Path:
    """Write a decoded audio value (``{"array", "sampling_rate"}``, ``(rate, array)`` or an array) as 16-bit WAV."""
    import wave

    import numpy as np

    if isinstance(value, dict):
        array, rate = value.get("array"), value.get("sampling_rate")
    elif isinstance(value, tuple) and len(value) == 2:
        rate, array = value
    else:
        array, rate = value, None
    _require(array is not None, f"cannot write a {type(value).__name__} as audio: decode_input must give an array and a sampling rate")
    data = np.asarray(array, dtype=np.float32)
    if data.ndim > 1:
        data = data.mean(axis=0 if data.shape[0] < data.shape[1] else 1)
    pcm = (np.clip(data, -1.0, 1.0) * 32767).round().astype("<i2")
    path = Path(path)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(int(rate or default_rate))
        f.writeframes(pcm.tobytes())
    return path


def _component_value(spec, component, stored: Any) -> Any:
    """What the Gradio component hands the app for a stored example (``type=`` decides)."""
    kind = getattr(component, "type", None)
    if spec.example_kind == "text":
        return stored
    if spec.example_kind == "image":
        if kind == "pil":
            from PIL import Image

            with Image.open(stored) as im:
                im.load()
                return im.copy()
        if kind == "numpy":
            import numpy as np
            from PIL import Image

            with Image.open(stored) as im:
                return np.asarray(im.convert("RGB"))
        return stored  # filepath
    if spec.example_kind == "audio":
        if kind == "numpy":  # (sampling_rate, int16 samples) as gr.Audio(type="numpy") gives it
            import wave

            import numpy as np

            with wave.open(stored, "rb") as f:
                return f.getframerate(), np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").copy()
        return stored
    return stored
