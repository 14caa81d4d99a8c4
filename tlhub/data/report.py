"""The data report: :class:`DataReport` accounts for every row :func:`~tlhub.data.loading.load_data`
used, dropped, converted or repaired, and says it in a few lines for humans."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: Human names of the PIL modes converted to RGB, for the report.
MODE_NAMES = {
    "L": "greyscale (L)",
    "LA": "greyscale with alpha (LA)",
    "1": "1-bit (1)",
    "P": "palette (P)",
    "PA": "palette with alpha (PA)",
    "RGBA": "RGBA (composited on white)",
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
    "LAB": "LAB",
    "HSV": "HSV",
    "I": "32-bit integer greyscale (I, rescaled)",
    "I;16": "16-bit greyscale (I;16, rescaled)",
    "I;16B": "16-bit greyscale (I;16B, rescaled)",
    "I;16L": "16-bit greyscale (I;16L, rescaled)",
    "I;16N": "16-bit greyscale (I;16N, rescaled)",
    "F": "32-bit float greyscale (F, rescaled)",
}



@dataclass
class DataReport:
    """Everything :func:`load_data` did to the data: nothing is dropped or changed unrecorded."""

    source: str
    source_name: str = ""
    modality: str = ""
    input_column: str | None = None
    label_column: str | None = None
    labels: list[str] = field(default_factory=list)
    #: split -> rows in the prepared split
    counts: dict[str, int] = field(default_factory=dict)
    #: split -> class name -> rows
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    #: source split -> rows it had
    source_rows: dict[str, int] = field(default_factory=dict)
    #: prepared split -> where its rows come from, in words
    split_origin: dict[str, str] = field(default_factory=dict)
    #: every dropped row: {"split" (source split), "row" (0-based index in it), "file" (or None), "reason"}
    skipped: list[dict[str, Any]] = field(default_factory=list)
    #: prepared split -> original PIL mode -> images that are converted to RGB when decoded
    converted: dict[str, dict[str, int]] = field(default_factory=dict)
    #: text decoded with U+FFFD replacement characters: {"split"/"file", "row"/"line", "reason"}
    repaired: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: source split -> rows whose inputs were decoded and checked
    checked: dict[str, int] = field(default_factory=dict)
    test_evaluation: bool = False
    on_bad_input: str = "skip"
    #: where the data comes from: origin, licence, citation, Hub id, how built-ins were split
    provenance: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def skip(self, split: str, row: int, reason: str, file: str | None = None) -> None:
        self.skipped.append({"split": split, "row": int(row), "file": file, "reason": reason})

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(reason_kind(s["reason"]) for s in self.skipped))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["skipped_count"] = len(self.skipped)
        out["skipped_by_reason"] = self.skipped_by_reason
        out["converted_total"] = dict(sum((Counter(v) for v in self.converted.values()), Counter()))
        return out

    def summary(self, max_rows: int = 5) -> str:
        """A few lines for humans: what is used, what was dropped or converted, warnings."""
        shown = ", ".join(self.labels[:10]) + (f", ... ({len(self.labels)} in all)" if len(self.labels) > 10 else "")
        lines = [f"data: {self.source_name or self.source} ({self.modality}; input column {self.input_column!r}, label column {self.label_column!r})"]
        lines.append(f"  classes ({len(self.labels)}): {shown}")
        for split, n in self.counts.items():
            origin = self.split_origin.get(split)
            lines.append(f"  {split}: {plural(n, 'row')}" + (f" ({origin})" if origin else ""))
        if not self.test_evaluation:
            lines.append("  test: none (no test evaluation)")
        if self.checked:
            lines.append("  images decoded and checked: " + ", ".join(f"{n:,} ({k})" for k, n in self.checked.items()))
        elif self.modality == "image" and self.provenance.get("builtin"):
            lines.append("  images: built-in data, checked when it was built")
        total = Counter()
        for per in self.converted.values():
            total.update(per)
        if total:
            parts = [f"{n:,} {MODE_NAMES.get(m, m)}" for m, n in total.most_common()]
            lines.append("  converted to RGB when decoded: " + ", ".join(parts))
        if self.skipped:
            by = ", ".join(f"{n:,} {k}" for k, n in Counter(reason_kind(s["reason"]) for s in self.skipped).most_common())
            lines.append(f"  skipped {plural(len(self.skipped), 'row')}: {by}")
            for s in self.skipped[:max_rows]:
                lines.append(f"    - {where(s)}: {s['reason']}")
            if len(self.skipped) > max_rows:
                lines.append(f"    ... and {len(self.skipped) - max_rows:,} more (see the data report)")
        if self.repaired:
            rows = [r for r in self.repaired if "row" in r]
            lines.append(f"  text decoded with replacement characters (invalid UTF-8): {len(rows) or len(self.repaired):,} rows")
            for r in (rows or self.repaired)[:max_rows]:
                lines.append(f"    - {where(r)}")
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def where(entry: dict[str, Any]) -> str:
    """Where a reported row is, in words: its file, line and/or split row."""
    parts = []
    if entry.get("file"):
        parts.append(str(entry["file"]))
    if entry.get("line") is not None:
        parts.append(f"line {entry['line']}")
    if entry.get("row") is not None:
        parts.append(f"{entry.get('split', '')} row {entry['row']}".strip())
    return ", ".join(parts) or "?"


def reason_kind(reason: str) -> str:
    """The reason without its row-specific detail (for counts)."""
    for sep in (" (", ": "):
        if sep in reason:
            reason = reason.split(sep, 1)[0]
    return reason


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")
