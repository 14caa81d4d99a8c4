"""The data doctor: duplicates, train/test leakage, likely label errors, imbalance, outliers and
label-name variants, found before training, with the backbone features tlhub already caches.

Two levels:

- :func:`cheap_checks` (also the pre-flight of ``tlhub train``): exact duplicates and leakage by
  content hash (the stored image/audio bytes, or the text with case and whitespace normalised),
  class imbalance, empty or tiny classes, and label names that differ only in case, whitespace,
  ``-`` or ``_``. No backbone pass: hashing the inputs is all it costs.
- :func:`diagnose` (``tlhub doctor``) adds what needs features, read through the trainer's own
  feature cache (:meth:`tlhub.engine.trainer.Loop.features`, same key), so a following ``tlhub train``
  with the same options gets a cache hit, and the other way round:

  * near-duplicates, within a split and across splits: for text, cosine neighbours (scikit-learn
    ``NearestNeighbors``) of the features, centred on their mean and L2-normalised, at cosine >=
    ``near_threshold``; for images, pairs whose 16 x 16 thumbnails correlate at >=
    ``NEAR_PIXEL_CORRELATION``, among the feature neighbours and the thumbnails' own neighbours;
  * likely label errors from out-of-fold probabilities of a linear probe (standardise, PCA to at
    most 128 dimensions fitted once on every row, which reads no labels; logistic regression with
    C = 0.003, stratified 5-fold over every labelled split pooled: no example is scored by a probe
    that saw its label). With ``cleanlab`` installed (the
    optional extra ``tlhub[cleanlab]``; AGPL-3.0, so never required) its confident-learning
    ``find_label_issues`` (Northcutt et al., JAIR 2021) decides. Otherwise tlhub's rule: an
    example is flagged when the probability of its given label is below a quarter of chance,
    ``1 / (4 k)`` for ``k`` classes (:data:`LABEL_ERROR_CHANCE_FRACTION`): the probe that never saw
    it finds its label four times less likely than a blind guess. The suggested label is the most
    probable other class; the score is the given label's probability (lower = more suspect).
    Why not tlhub's earlier confident-learning rule (given label below its class's mean
    self-confidence while another class is above its own): on similar-looking classes (shirts and
    T-shirts) it flags the natural confusions too, precision 0.29 against 0.76 for this rule on the
    tuning set named at :data:`LABEL_ERROR_CHANCE_FRACTION`;
  * outliers: examples whose mean cosine distance to their 5 nearest neighbours **and** whose
    distance to the nearest class centroid (of the training split), both on the raw features, are
    beyond Tukey's fence (third quartile + 1.5 x the interquartile range) of all examples.

Which copy of a duplicate is flagged: the one in the less held-out split (test is kept before
validation, validation before train), then the later row. So ``--fix`` drops the training copy
of a leaked test image and the test split stays as it was.

Rows are numbered as in tlhub's prepared splits (after ``load_data``: skipped rows removed, the
validation split carved out of train when none is given); ``file`` is the input's file where the
data has one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlhub.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from tlhub.data.loading import PreparedData
    from tlhub.engine.config import TrainConfig

#: ``class_weights: auto`` turns balanced weights on above this ratio of the largest training
#: class to the smallest; the doctor reports imbalance above it.
IMBALANCE_RATIO = 3.0
#: Fewer training examples than this make a "tiny" class (too few for 5-fold out-of-fold scores).
TINY_CLASS = 5
#: Text: cosine similarity (of centred, normalised features) at or above which two inputs are near-duplicates.
NEAR_DUPLICATE_COSINE = 0.95
#: Images: a pair is a near-duplicate when its 16 x 16 greyscale thumbnails (centred, normalised)
#: correlate at >= NEAR_PIXEL_CORRELATION; the pairs looked at are the feature neighbours at cosine
#: >= NEAR_CANDIDATE_COSINE and the thumbnails' own nearest neighbours. Features alone do not
#: separate a resized, re-compressed copy (cosine 0.81-0.95 on Fashion-MNIST at 96 px) from two
#: different but similar items (up to 0.94); the thumbnails do: 0.9988-0.9998 for the copies,
#: at most 0.9966 for different trousers. Both values were chosen on a tuning set of planted
#: copies (benchmarks/run.py doctor's planting, seed 1, on training images 30,000 onwards), apart
#: from the benchmark's own set.
NEAR_CANDIDATE_COSINE = 0.8
NEAR_PIXEL_CORRELATION = 0.998
THUMBNAIL = 16
OUTLIER_NEIGHBOURS = 5
OUTLIER_FENCE = 1.5  # Tukey's fence: Q3 + 1.5 IQR (of both distances)
LABEL_ERROR_FOLDS = 5
#: An example is a likely label error when the out-of-fold probability of its label is below this
#: fraction of chance (1 / number of classes). 0.25 and the probe's C = 0.003 were chosen on a
#: tuning set (benchmarks/run.py doctor's planting: 5% flipped labels among 1,000 Fashion-MNIST
#: training images from index 30,000 on, seed 1, 5,000 test images), apart from the benchmark's
#: own set: precision / recall 0.76 / 0.78 there; 0.5 gave 0.62 / 0.82, 1.0 gave 0.48 / 0.88.
LABEL_ERROR_CHANCE_FRACTION = 0.25
LABEL_ERROR_C = 0.003
REPORT_FILE = "doctor.json"

#: split priority: the copy in the more held-out split is the one kept
_KEEP_ORDER = {"test": 0, "validation": 1, "train": 2}

#: finding kinds, in the order reports list them, with the fix each suggests
KINDS = {
    "leakage": "drop the copy from the less held-out split (tlhub doctor --fix drops it)",
    "exact_duplicate": "drop the extra copy (tlhub doctor --fix drops it)",
    "near_leakage": "check the pair: if it is the same example, drop the copy from the less held-out split (--fix --drop-near-duplicates)",
    "near_duplicate": "check the pair: if it is the same example, drop one copy (--fix --drop-near-duplicates)",
    "label_error": "check the label; relabel it, or drop it (--fix --drop-label-errors)",
    "outlier": "check the example: is it in scope for these classes at all?",
    "imbalance": "train with class_weights: balanced (auto does it above the stated ratio), collect more of the small classes, and judge by balanced accuracy",
    "empty_class": "add training examples of the class, or remove the class",
    "tiny_class": "add training examples of the class (a few per class is too few to learn or to check)",
    "label_variant": "merge the variants into one label (rename the folders / the label values)",
}
#: the kinds the cheap pre-flight checks (no backbone pass)
CHEAP_KINDS = ("leakage", "exact_duplicate", "imbalance", "empty_class", "tiny_class", "label_variant")


@dataclass
class Finding:
    """One problem the doctor found: where (split, row, file), how sure (score), what to do (fix)."""

    kind: str
    split: str | None = None
    row: int | None = None
    file: str | None = None
    label: str | None = None
    score: float | None = None
    fix: str = ""
    #: the example it duplicates / the label it was confused with, ...
    other: dict[str, Any] | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown finding kind {self.kind!r}", fix=f"use one of {', '.join(KINDS)}")
        if not self.fix:
            self.fix = KINDS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DoctorReport:
    source_name: str
    modality: str
    splits: dict[str, int]
    labels: list[str]
    findings: list[Finding] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # which checks ran
    thresholds: dict[str, Any] = field(default_factory=dict)
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    label_error_method: str | None = None
    feature_cache: dict[str, bool] = field(default_factory=dict)  # split -> read from the cache
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(f.kind for f in self.findings)
        return {k: counted.get(k, 0) for k in KINDS if k in counted or _kind_checked(k, self.checks)}

    @property
    def imbalance_ratio(self) -> float | None:
        for f in self.findings:
            if f.kind == "imbalance":
                return f.score
        return _imbalance(self.class_counts.get("train", {}))[0]

    def of(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def summary_dict(self) -> dict[str, Any]:
        """The counts for the training record and the card (no per-row detail)."""
        ratio = self.imbalance_ratio
        return {
            "counts": self.counts,
            "checks": list(self.checks),
            "imbalance_ratio": None if ratio is None or ratio == float("inf") else round(ratio, 3),
            "imbalance_threshold": IMBALANCE_RATIO,
            "label_error_method": self.label_error_method,
        }

    def to_dict(self) -> dict[str, Any]:
        out = {
            "source": self.source_name,
            "modality": self.modality,
            "splits": self.splits,
            "labels": self.labels,
            "class_counts": self.class_counts,
            "checks": self.checks,
            "thresholds": self.thresholds,
            "counts": self.counts,
            "label_error_method": self.label_error_method,
            "feature_cache": self.feature_cache,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "seconds": round(self.seconds, 3),
            "findings": [f.to_dict() for f in self.findings],
        }
        if self.modality == "text":
            columns, rows = self.table()
            out["table"] = {"columns": columns, "rows": rows}
        return out

    def table(self, limit: int | None = None) -> tuple[list[str], list[list[Any]]]:
        """The findings as a table (kind, split, row, label, score, other, text or file)."""
        columns = ["kind", "split", "row", "label", "score", "other", "input"]
        rows = []
        for f in self.findings[:limit]:
            other = ""
            if f.other:
                other = f.other.get("label") if "row" not in f.other else f"{f.other.get('split')}[{f.other.get('row')}]"
            rows.append([f.kind, f.split or "", "" if f.row is None else f.row, f.label or "",
                         "" if f.score is None else round(f.score, 4), other or "", f.detail.get("text") or (Path(f.file).name if f.file else "")])
        return columns, rows

    def summary_lines(self) -> list[str]:
        """A few lines for the terminal: one per kind with findings."""
        lines = []
        for kind, n in self.counts.items():
            if not n:
                continue
            if kind == "imbalance":
                lines.append(f"class imbalance {self.imbalance_ratio:.1f}:1 in train (above {IMBALANCE_RATIO:g}:1): judge by balanced accuracy")
            else:
                name = kind.replace("_", " ")
                if n != 1 and not kind.endswith("leakage"):
                    name = name[:-1] + "es" if name.endswith("ss") else name + "s"  # "tiny classes", "exact duplicates"
                lines.append(f"{n:,} {name}")
        if not lines:
            lines.append("no findings (" + ", ".join(c.replace("_", " ") for c in self.checks) + ")")
        return lines

    def save(self, folder: str | os.PathLike) -> Path:
        from tlhub.fileio import write_json_atomic

        path = Path(folder) / REPORT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, self.to_dict())
        return path

    def raise_if_findings(self, what: str = "the data") -> None:
        """``--strict``: any finding stops, with the counts and the fix."""
        counts = {k: n for k, n in self.counts.items() if n}
        if counts:
            raise DataError(
                f"{what} has findings ({', '.join(f'{n:,} {k}' for k, n in counts.items())}) and --strict is set",
                fix="run `tlhub doctor DATA` to see each finding and write a cleaned copy with --fix OUT, or drop --strict",
            )


def _kind_checked(kind: str, checks: list[str]) -> bool:
    needs = {"leakage": "exact_duplicates", "exact_duplicate": "exact_duplicates", "near_leakage": "near_duplicates",
             "near_duplicate": "near_duplicates", "label_error": "label_errors", "outlier": "outliers",
             "imbalance": "imbalance", "empty_class": "imbalance", "tiny_class": "imbalance", "label_variant": "label_names"}
    return needs[kind] in checks


# -- the cheap checks ----------------------------------------------------------------------------
def input_records(split) -> list[dict[str, Any]]:
    """Per row of a prepared split: ``{"bytes", "path"}`` for image/audio, ``{"text"}`` for text (nothing decoded)."""
    import datasets

    feature = split.features["input"]
    if isinstance(feature, (datasets.Image, datasets.Audio)):
        raw = split.cast_column("input", type(feature)(decode=False)).select_columns(["input"])
        return [dict(v) if v is not None else {"bytes": None, "path": None} for v in raw["input"]]
    return [{"text": v} for v in split.select_columns(["input"])["input"]]


def _content(record: dict[str, Any]) -> bytes | None:
    if "text" in record:
        text = record["text"]
        return None if text is None else " ".join(str(text).split()).casefold().encode("utf-8")
    if record.get("bytes") is not None:
        return record["bytes"]
    path = record.get("path")
    if path and os.path.isfile(path):
        return Path(path).read_bytes()
    return None


def content_hashes(split) -> list[str | None]:
    """A hash of each row's content: the stored bytes of an image/audio, or the normalised text."""
    out = []
    for record in input_records(split):
        content = _content(record)
        out.append(None if content is None else hashlib.blake2b(content, digest_size=16).hexdigest())
    return out


def normalised_label(name: str) -> str:
    return " ".join(re.sub(r"[-_]+", " ", str(name)).split()).casefold()


def _imbalance(counts: dict[str, int]) -> tuple[float | None, str | None, str | None]:
    present = {k: n for k, n in counts.items() if n > 0}
    if len(present) < 2:
        return None, None, None
    big = max(present, key=present.get)
    small = min(present, key=present.get)
    return present[big] / present[small], big, small


def class_counts(data: "PreparedData") -> dict[str, dict[str, int]]:
    import numpy as np

    out = {}
    for name, split in data.splits.items():
        per = np.bincount(np.asarray(split["label"], dtype=np.int64), minlength=len(data.labels)) if len(split) else np.zeros(len(data.labels), int)
        out[name] = {data.labels[i]: int(n) for i, n in enumerate(per)}
    return out


def _ordered(data: "PreparedData") -> list[str]:
    return sorted(data.splits, key=lambda s: _KEEP_ORDER.get(s, 3))


def _file(record: dict[str, Any]) -> str | None:
    return record.get("path") or None


def cheap_checks(data: "PreparedData", *, records: dict[str, list] | None = None) -> DoctorReport:
    """The checks that need no backbone pass (``tlhub train``'s pre-flight)."""
    started = time.perf_counter()
    report = DoctorReport(data.source_name, data.modality, {k: len(v) for k, v in data.splits.items()}, list(data.labels))
    report.checks = ["exact_duplicates", "imbalance", "label_names"]
    report.thresholds = {"imbalance_ratio": IMBALANCE_RATIO, "tiny_class": TINY_CLASS}
    report.class_counts = class_counts(data)
    records = records if records is not None else {name: input_records(split) for name, split in data.splits.items()}

    # exact duplicates and leakage: the first copy in keep order is kept, the others are findings
    codes = {name: list(split["label"]) for name, split in data.splits.items()}  # a column read: no decoding
    groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for name in _ordered(data):
        for row, record in enumerate(records[name]):
            content = _content(record)
            if content is not None:
                groups[hashlib.blake2b(content, digest_size=16).hexdigest()].append((name, row))
    for digest, members in groups.items():
        if len(members) < 2:
            continue
        keep_split, keep_row = members[0]
        kept = {"split": keep_split, "row": keep_row, "file": _file(records[keep_split][keep_row]),
                "label": data.labels[codes[keep_split][keep_row]]}
        for split, row in members[1:]:
            label = data.labels[codes[split][row]]
            detail = {"hash": digest}
            if label != kept["label"]:
                detail["conflicting_labels"] = [kept["label"], label]
            report.findings.append(Finding("exact_duplicate" if split == keep_split else "leakage", split, row,
                                           _file(records[split][row]), label, 1.0, other=kept, detail=detail))

    # classes
    train = report.class_counts.get("train", {})
    ratio, big, small = _imbalance(train)
    if ratio is not None and ratio > IMBALANCE_RATIO:
        report.findings.append(Finding("imbalance", "train", score=ratio, detail={
            "largest": big, "largest_count": train[big], "smallest": small, "smallest_count": train[small], "threshold": IMBALANCE_RATIO}))
    for label, n in train.items():
        if n == 0:
            report.findings.append(Finding("empty_class", "train", label=label, score=0.0))
        elif n < TINY_CLASS:
            report.findings.append(Finding("tiny_class", "train", label=label, score=float(n), detail={"minimum": TINY_CLASS}))
    variants: dict[str, list[str]] = defaultdict(list)
    for label in data.labels:
        variants[normalised_label(label)].append(label)
    for key, names in variants.items():
        if len(names) > 1:
            counts = {n: sum(c.get(n, 0) for c in report.class_counts.values()) for n in names}
            report.findings.append(Finding("label_variant", label=names[0], score=float(len(names)),
                                           fix=f"merge {', '.join(map(repr, names))} into one label (rename the folders / the label values)",
                                           detail={"variants": names, "counts": counts}))
    report.timings["hashing"] = time.perf_counter() - started
    report.seconds = time.perf_counter() - started
    return report


# -- class weights (the trainer's loss) --------------------------------------------------------------
def class_weight_plan(mode: str, counts: list[int], labels: list[str]) -> dict[str, Any]:
    """What ``class_weights`` does with these training counts: the choice, why, and the weights.

    ``balanced`` weights are scikit-learn's: ``n_samples / (n_classes * count)`` (a class with no
    examples gets 0); ``auto`` uses them when the largest class is more than
    :data:`IMBALANCE_RATIO` times the smallest, none otherwise.
    """
    ratio, _, _ = _imbalance(dict(zip(labels, counts)))
    applied = mode
    if mode == "auto":
        applied = "balanced" if ratio is not None and ratio > IMBALANCE_RATIO else "none"
    weights = None
    if applied == "balanced":
        present = [c for c in counts if c > 0]
        total, k = sum(present), len(present)
        weights = {label: (round(total / (k * c), 6) if c > 0 else 0.0) for label, c in zip(labels, counts)}
    return {"mode": mode, "applied": applied, "imbalance_ratio": None if ratio is None else round(ratio, 3),
            "threshold": IMBALANCE_RATIO, "weights": weights}


# -- the full check-up ----------------------------------------------------------------------------
@dataclass
class Diagnosis:
    """What :func:`diagnose` returns: the report, and the data and features it looked at."""

    report: DoctorReport
    data: "PreparedData"
    records: dict[str, list[dict[str, Any]]]
    features: dict[str, Any] = field(default_factory=dict)  # split -> N x D float32 array
    probabilities: Any = None  # out-of-fold probe probabilities, pooled in keep order


def diagnose(cfg: "TrainConfig", *, near_threshold: float = NEAR_DUPLICATE_COSINE, features: bool = True,
             label_errors: bool = True, progress: bool = True, say=print) -> Diagnosis:
    """Load the data as ``train()`` would and check it: the cheap checks, then (``features``)
    near-duplicates, likely label errors and outliers from the cached backbone features."""
    if not 0 < near_threshold <= 1:
        raise ConfigError(f"near-duplicate threshold {near_threshold} is not in (0, 1]", fix="use a cosine similarity such as 0.95")
    started = time.perf_counter()
    from tlhub.core.factory import resolve_backbone
    from tlhub.data.loading import load_data

    source, adapter = resolve_backbone(cfg.backbone, revision=cfg.revision, adapter=cfg.adapter)
    clock = time.perf_counter()
    data = load_data(cfg.data_spec(), modality=adapter.modality, decode=adapter.decode_input, progress=progress)
    load_seconds = time.perf_counter() - clock
    say(f"data      {data.source_name}: " + ", ".join(f"{k} {len(v):,}" for k, v in data.splits.items()) + f"; {len(data.labels)} classes")
    records = {name: input_records(split) for name, split in data.splits.items()}
    report = cheap_checks(data, records=records)
    report.timings["data"] = load_seconds
    diagnosis = Diagnosis(report, data, records)
    if features:
        _feature_checks(cfg, source, adapter, diagnosis, near_threshold=near_threshold, label_errors=label_errors, progress=progress)
    report.findings.sort(key=lambda f: (list(KINDS).index(f.kind), _KEEP_ORDER.get(f.split or "", 3), f.row if f.row is not None else -1))
    report.seconds = time.perf_counter() - started
    return diagnosis


def _features(cfg, source, adapter, data, report: DoctorReport) -> dict[str, Any]:
    """Each split's frozen features (the probe's: :meth:`Loop.embedding_features`), through the
    trainer's cache (the key ``tlhub train`` uses)."""
    import numpy as np

    from tlhub.engine.trainer import feature_loop

    loop = feature_loop(cfg, source, adapter, data)
    out = {}
    for name in _ordered(data):
        x, _, _ = loop.embedding_features(name)  # what a probe reads (a sentence encoder's embedding, not its pooler)
        out[name] = np.asarray(x, dtype=np.float32)
    report.feature_cache = dict(loop.feature_hits)
    return out


def _feature_checks(cfg, source, adapter, diagnosis: Diagnosis, *, near_threshold: float, label_errors: bool, progress: bool) -> None:
    import numpy as np

    report, data, records = diagnosis.report, diagnosis.data, diagnosis.records
    clock = time.perf_counter()
    feats = _features(cfg, source, adapter, data, report)
    diagnosis.features = feats
    report.timings["features"] = time.perf_counter() - clock
    order = _ordered(data)
    index = [(name, row) for name in order for row in range(len(data.splits[name]))]
    if len(index) < 3:
        return
    x = np.concatenate([feats[name] for name in order]).astype(np.float64)
    y = np.concatenate([np.asarray(data.splits[name]["label"], dtype=np.int64) for name in order])
    # centred: raw pooled CNN features are all positive, so every pair has a high cosine
    z = x - x.mean(axis=0, keepdims=True)
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    hashes = {}
    for f in report.of("exact_duplicate") + report.of("leakage"):
        hashes[(f.split, f.row)] = f.detail["hash"]
        hashes[(f.other["split"], f.other["row"])] = f.detail["hash"]

    clock = time.perf_counter()
    k = min(OUTLIER_NEIGHBOURS + 1, len(index))
    dist, nbr = _neighbours(z.astype(np.float32), k, progress=progress)  # float32: twice as fast, distances to 1e-6
    report.timings["neighbours"] = time.perf_counter() - clock
    report.checks += ["near_duplicates", "outliers"]
    report.thresholds.update(near_duplicate_cosine=near_threshold, outlier_neighbours=OUTLIER_NEIGHBOURS, outlier_fence_iqr=OUTLIER_FENCE)

    def where(i: int) -> dict[str, Any]:
        name, row = index[i]
        return {"split": name, "row": row, "file": _file(records[name][row]), "label": data.labels[y[i]]}

    # near-duplicates: each example is flagged once, against its most similar example earlier in
    # keep order (the copy that stays); exact copies are findings of their own already. Text: the
    # features' cosine decides. Images: the features alone do not separate a resized,
    # re-compressed copy from a different but similar item (see NEAR_PIXEL_CORRELATION), so a pair
    # is a near-duplicate when its thumbnails correlate; candidates are the feature neighbours and
    # the thumbnails' own neighbours (a copy whose features moved far still has the same picture).
    images = data.modality == "image"
    candidates: dict[int, set[int]] = defaultdict(set)
    for i in range(len(index)):
        for d, j in zip(dist[i], nbr[i]):
            if j < i and 1.0 - float(d) >= (NEAR_CANDIDATE_COSINE if images else near_threshold):
                candidates[i].add(int(j))
    thumbs = None
    if images:
        report.thresholds.update(near_candidate_cosine=NEAR_CANDIDATE_COSINE, near_pixel_correlation=NEAR_PIXEL_CORRELATION)
        clock = time.perf_counter()
        thumbs = _thumbnails([records[name][row] for name, row in index], progress=progress)
        usable = np.flatnonzero(np.any(thumbs != 0, axis=1))
        if len(usable) > 1:
            t_dist, t_nbr = _neighbours(thumbs[usable], min(OUTLIER_NEIGHBOURS + 1, len(usable)), progress=progress, desc="neighbours (thumbnails)")
            for a, (ds, js) in enumerate(zip(t_dist, t_nbr)):
                i = int(usable[a])
                for d, b in zip(ds, js):
                    j = int(usable[b])
                    if j < i and 1.0 - float(d) >= NEAR_PIXEL_CORRELATION:
                        candidates[i].add(j)
        report.timings["thumbnails"] = time.perf_counter() - clock
    for i in sorted(candidates):
        best = None
        for j in candidates[i]:
            if hashes.get(index[i]) is not None and hashes.get(index[i]) == hashes.get(index[j]):
                continue
            cos = float(z[i] @ z[j])
            corr = None
            if images:
                corr = float(thumbs[i] @ thumbs[j])
                if corr < NEAR_PIXEL_CORRELATION:
                    continue
            key = corr if images else cos
            if best is None or key > best[0]:
                best = (key, j, cos, corr)
        if best is not None:
            _, j, cos, corr = best
            here = where(i)
            kind = "near_duplicate" if index[i][0] == index[j][0] else "near_leakage"
            detail = {"cosine": round(cos, 6)} | ({"pixel_correlation": round(corr, 6)} if corr is not None else {})
            report.findings.append(Finding(kind, here["split"], here["row"], here["file"], here["label"], round(corr if corr is not None else cos, 6),
                                           other=where(j), detail=detail))

    # outliers: far from their neighbours and from every class centroid of the training split. On
    # the raw (uncentred) features: centring removes what all the data shares, and an input of
    # another kind altogether (a photo among clothes) differs from the rest in exactly that.
    train = np.array([n == "train" for n, _ in index])
    u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    raw_dist, raw_nbr = _neighbours(u.astype(np.float32), k, progress=progress, desc="neighbours (outliers)")
    knn = np.array([np.mean([d for d, j in zip(raw_dist[i], raw_nbr[i]) if j != i][:OUTLIER_NEIGHBOURS] or [0.0]) for i in range(len(index))])
    classes = sorted(set(y[train].tolist()))
    if classes:
        centroids = np.stack([u[train & (y == c)].mean(axis=0) for c in classes])
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        to_centroid = 1.0 - (u @ centroids.T).max(axis=1)
        fence_knn, fence_c = _fence(knn), _fence(to_centroid)
        for i in np.flatnonzero((knn > fence_knn) & (to_centroid > fence_c)):
            here = where(int(i))
            report.findings.append(Finding("outlier", here["split"], here["row"], here["file"], here["label"], round(float(knn[i]), 6),
                                           detail={"knn_distance": round(float(knn[i]), 6), "centroid_distance": round(float(to_centroid[i]), 6),
                                                   "fences": [round(fence_knn, 6), round(fence_c, 6)]}))

    if label_errors:
        clock = time.perf_counter()
        _label_errors(x, y, index, where, diagnosis)
        report.timings["label_errors"] = time.perf_counter() - clock
    if data.modality == "text":
        for f in report.findings:
            if f.split is not None and f.row is not None:
                f.detail["text"] = _preview(records[f.split][f.row].get("text"))


def _thumbnails(records: list[dict[str, Any]], *, progress: bool):
    """Every record's :func:`_thumbnail` as rows of one array (zeros where there is none)."""
    import numpy as np
    from tqdm.auto import tqdm

    out = np.zeros((len(records), THUMBNAIL * THUMBNAIL))
    for i, record in enumerate(tqdm(records, desc="thumbnails", unit="image", leave=False, disable=not progress)):
        t = _thumbnail(record)
        if t is not None:
            out[i] = t
    return out


def _thumbnail(record: dict[str, Any]):
    """A 16 x 16 greyscale thumbnail, centred and normalised (so a dot product is a correlation)."""
    import io

    import numpy as np
    from PIL import Image

    content = _content(record)
    if content is None:
        return None
    try:
        with Image.open(io.BytesIO(content)) as im:
            a = np.asarray(im.convert("L").resize((THUMBNAIL, THUMBNAIL), Image.BILINEAR), dtype=np.float64).ravel()
    except Exception:  # unreadable here: the pair is then judged by its features alone
        return None
    a -= a.mean()
    norm = np.linalg.norm(a)
    return a / norm if norm > 0 else None


def _neighbours(z, k: int, *, progress: bool, desc: str = "neighbours"):
    """The k nearest neighbours (cosine distance) of every row, queried in chunks under a progress bar."""
    import numpy as np
    from sklearn.neighbors import NearestNeighbors
    from tqdm.auto import tqdm

    index = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(z)
    dist, nbr = [], []
    chunk = 1024
    for start in tqdm(range(0, len(z), chunk), desc=desc, unit="chunk", leave=False, disable=not progress):
        d, n = index.kneighbors(z[start : start + chunk])
        dist.append(d)
        nbr.append(n)
    return np.concatenate(dist), np.concatenate(nbr)


def _fence(values) -> float:
    import numpy as np

    q1, q3 = np.percentile(values, [25, 75])
    return float(q3 + OUTLIER_FENCE * (q3 - q1))


def out_of_fold_probabilities(x, y, *, folds: int = LABEL_ERROR_FOLDS, seed: int = 0):
    """Probabilities of a linear probe for every row, each from a probe that did not train on it.

    Rows of classes with fewer than ``folds`` examples get NaN (too few to hold one out per fold)."""
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.preprocessing import StandardScaler

    counts = np.bincount(y, minlength=int(y.max()) + 1)
    usable = counts[y] >= folds
    probs = np.full((len(y), len(counts)), np.nan)
    kept = np.flatnonzero(counts >= folds)
    if len(kept) < 2:
        return probs
    xs, ys = x[usable], y[usable]
    dims = int(min(128, xs.shape[1], len(ys) - len(ys) // folds - 1))
    from threadpoolctl import threadpool_limits

    # matrices this small are slower on several BLAS threads than on one (6,000 rows: 5 s on one
    # thread, 84 s on two on a busy two-core machine)
    with threadpool_limits(limits=1, user_api="blas"):
        # the projection is fitted once on every row: it never sees a label, so no fold's held-out
        # labels reach its probe (what out-of-fold means here), and it is five times cheaper
        z = PCA(n_components=dims, random_state=seed).fit_transform(StandardScaler().fit_transform(xs))
        probe = LogisticRegression(C=LABEL_ERROR_C, max_iter=500)
        p = cross_val_predict(probe, z, ys, cv=StratifiedKFold(folds, shuffle=True, random_state=seed), method="predict_proba")
    full = np.zeros((len(ys), len(counts)))
    full[:, kept] = p  # predict_proba's columns are the classes present, in sorted order
    probs[usable] = full
    return probs


def low_self_confidence(probs, y):
    """tlhub's default label-issue rule (see the module docstring): a boolean mask (the given
    label's probability below ``LABEL_ERROR_CHANCE_FRACTION / k``) and the suggested labels (the
    most probable other class)."""
    import numpy as np

    k = probs.shape[1]
    rows = np.arange(len(y))
    given = probs[rows, y]
    others = probs.copy()
    others[rows, y] = -1.0
    return given < LABEL_ERROR_CHANCE_FRACTION / k, others.argmax(axis=1)


def _label_errors(x, y, index, where, diagnosis: Diagnosis) -> None:
    import numpy as np

    report = diagnosis.report
    probs = out_of_fold_probabilities(x, y)
    diagnosis.probabilities = probs
    ok = ~np.isnan(probs).any(axis=1)
    if ok.sum() < 2:
        return
    report.checks.append("label_errors")
    p, labels = probs[ok], y[ok]
    rows = np.flatnonzero(ok)
    flagged, suggested = low_self_confidence(p, labels)
    try:
        from cleanlab.filter import find_label_issues
    except ImportError as exc:
        report.label_error_method = (f"out-of-fold probability of the given label below {LABEL_ERROR_CHANCE_FRACTION:g} / k "
                                     f"(tlhub's rule; {p.shape[1]} classes: below {LABEL_ERROR_CHANCE_FRACTION / p.shape[1]:.4g})")
        if exc.name != "cleanlab":  # installed, but broken: say so rather than fall back silently
            report.label_error_method += f"; cleanlab is installed but does not import ({exc})"
    else:
        flagged = find_label_issues(labels, p)
        report.label_error_method = "cleanlab.filter.find_label_issues"
    report.thresholds["label_error_probability"] = round(LABEL_ERROR_CHANCE_FRACTION / p.shape[1], 6)
    for local in np.flatnonzero(flagged):
        i = int(rows[local])
        here = where(i)
        s = int(suggested[local])
        report.findings.append(Finding("label_error", here["split"], here["row"], here["file"], here["label"],
                                       round(float(p[local, labels[local]]), 6),
                                       fix=f"check the label: {here['label']!r} given, the probe says {diagnosis.data.labels[s]!r}; relabel, or drop it (--fix --drop-label-errors)",
                                       other={"label": diagnosis.data.labels[s], "probability": round(float(p[local, s]), 6)}))


def _preview(text: Any, width: int = 80) -> str | None:
    if text is None:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


# -- contact sheets -------------------------------------------------------------------------------
def contact_sheets(diagnosis: Diagnosis, folder: str | os.PathLike, *, per_sheet: int = 12) -> list[Path]:
    """One PNG per finding kind (images only): the flagged example beside the example it duplicates,
    or beside an example of the label the probe says it is."""
    report, data, records = diagnosis.report, diagnosis.data, diagnosis.records
    if data.modality != "image":
        return []
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    def image(split: str, row: int):
        content = _content(records[split][row])
        return None if content is None else Image.open(io.BytesIO(content)).convert("RGB")

    def example_of(label: str):
        code = data.labels.index(label)
        for name in _ordered(data)[::-1]:  # train first
            labels = data.splits[name]["label"]
            for row, c in enumerate(labels):
                if c == code:
                    return name, row
        return None

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        shown = [f for f in report.of(kind) if f.split is not None and f.row is not None][:per_sheet]
        if not shown:
            continue
        fig, axes = plt.subplots(len(shown), 2, figsize=(4.4, 2.2 * len(shown)), squeeze=False)
        for (left, right), f in zip(axes, shown):
            left.imshow(image(f.split, f.row))
            left.set_title(f"{f.split}[{f.row}] '{f.label}'" + (f" {f.score:.3f}" if f.score is not None else ""), fontsize=7)
            partner = (f.other["split"], f.other["row"]) if f.other and "row" in f.other else (example_of(f.other["label"]) if f.other else None)
            if partner:
                right.imshow(image(*partner))
                title = f"{partner[0]}[{partner[1]}] '{data.labels[data.splits[partner[0]]['label'][partner[1]]]}'"
                right.set_title(("an example of " if kind == "label_error" else "") + title, fontsize=7)
            for ax in (left, right):
                ax.axis("off")
        fig.suptitle(kind.replace("_", " "), fontsize=9)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / len(shown)))  # room for the title above the first row
        path = folder / f"doctor_{kind}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


# -- the cleaned copy ------------------------------------------------------------------------------
FIX_DEFAULT = ("exact_duplicate", "leakage")


def write_fixed_copy(diagnosis: Diagnosis, out: str | os.PathLike, *, drop_label_errors: bool = False,
                     drop_near_duplicates: bool = False) -> dict[str, Any]:
    """A cleaned copy of the prepared splits in ``out``: an image folder (``split/label/file``) or
    one CSV per split (``text,label``), without exact duplicates and leaked copies (and, when asked,
    near-duplicates and likely label errors). The user's data is only read, never written."""
    data, records = diagnosis.data, diagnosis.records
    out = Path(out).resolve()
    spec_source = data.spec.source if data.spec is not None else None
    if isinstance(spec_source, (str, os.PathLike)) and Path(spec_source).exists():
        src = Path(spec_source).resolve()
        if out == src or src in out.parents or (src.is_dir() and out in src.parents) or (src.is_file() and out == src.parent):
            raise ConfigError(f"--fix {out} would write into (or over) the data it cleans ({src})",
                              fix="give --fix a new folder outside the data folder: the doctor never edits data in place")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--fix folder {out} exists and is not empty", fix="give --fix a new or empty folder")
    kinds = set(FIX_DEFAULT) | ({"label_error"} if drop_label_errors else set()) | ({"near_duplicate", "near_leakage"} if drop_near_duplicates else set())
    drop = defaultdict(set)
    reasons = Counter()
    for f in diagnosis.report.findings:
        if f.kind in kinds and f.split is not None and f.row is not None and f.row not in drop[f.split]:
            drop[f.split].add(f.row)
            reasons[f.kind] += 1
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    kept = {}
    for name, split in data.splits.items():
        labels = split["label"]
        rows = [r for r in range(len(split)) if r not in drop[name]]
        kept[name] = len(rows)
        if data.modality == "text":
            import csv

            with open(tmp / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["text", "label"])
                for r in rows:
                    writer.writerow([records[name][r]["text"], data.labels[labels[r]]])
        else:
            for r in rows:
                record = records[name][r]
                content = _content(record)
                if content is None:
                    continue
                folder = tmp / name / _safe(data.labels[labels[r]])
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{name}_{r:06d}{_suffix(record, content)}").write_bytes(content)
    summary = {"output": str(out), "dropped": dict(reasons), "kept": kept, "dropped_kinds": sorted(kinds),
               "rows": {k: sorted(v) for k, v in drop.items()}}
    (tmp / "doctor_fix.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    if out.exists():
        out.rmdir()
    os.replace(tmp, out)
    return summary


def _safe(label: str) -> str:
    # a folder name is the label when the copy is read back; only path separators must go
    return re.sub(r"[\\/]+", "_", label).strip() or "_"


def _suffix(record: dict[str, Any], content: bytes) -> str:
    path = record.get("path")
    if path and Path(path).suffix:
        return Path(path).suffix.lower()
    signatures = {b"\x89PNG": ".png", b"\xff\xd8\xff": ".jpg", b"GIF8": ".gif", b"BM": ".bmp", b"RIFF": ".webp"}
    for magic, suffix in signatures.items():
        if content.startswith(magic):
            return suffix
    return ".bin"
