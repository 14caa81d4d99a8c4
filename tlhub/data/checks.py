"""Checking inputs before training: every image a prepared split will use is decoded once (and
through the adapter's ``decode_input``), its mode recorded for the report or the reason it fails;
results are cached per source split so loading the same data again does not decode it again.

:class:`InputChecks` is also the ledger of bad rows of every kind (labels, texts, images): which
row failed and why, and, with ``on_bad_input="error"``, the error that lists them all.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import Counter
from pathlib import Path

from tlhub.data.columns import Columns
from tlhub.data.context import LoadContext
from tlhub.data.report import reason_kind, where
from tlhub.data.sources import RawSource
from tlhub.errors import DataError, TlhubError


class InputChecks:
    """Per (source split, row): None (passed, or not checked yet) or why the row is unusable."""

    def __init__(self, ctx: LoadContext, source: RawSource, columns: Columns):
        self.ctx = ctx
        self.source = source
        self.column = columns.input
        self.modality = columns.modality
        self.verdicts: dict[tuple[str, int], str | None] = {}  # (source split, row) -> reason or None
        self.modes: dict[tuple[str, int], str] = {}  # (source split, row) -> the image's original PIL mode
        self.errors: list[dict] = []  # bad rows, kept when on_bad_input="error"
        self._caches: dict[str, dict[str, list]] = {}  # source split -> row -> [mode, reason, file] (on disk too)
        self._paths: dict[str, list[str | None]] = {}  # source split -> resolved image paths of a text column

    def is_bad(self, split: str, row: int) -> bool:
        return self.verdicts.get((split, int(row))) is not None

    def record_bad(self, split: str, row: int, reason: str, *, file: str | None = None) -> None:
        self.verdicts[(split, row)] = reason
        if file is None:
            file = self.source.file_of(split)
        entry = {"split": split, "row": int(row), "file": file, "reason": reason}
        self.ctx.report.skipped.append(entry)
        if self.ctx.spec.on_bad_input == "error":
            self.errors.append(entry)

    def raise_if_errors(self) -> None:
        if not self.errors:
            return
        shown = "\n".join(f"  - {where(e)}: {e['reason']}" for e in self.errors[:10])
        more = f"\n  ... and {len(self.errors) - 10:,} more" if len(self.errors) > 10 else ""
        kinds = ", ".join(f"{n:,} {k}" for k, n in Counter(reason_kind(e["reason"]) for e in self.errors).most_common())
        raise DataError(
            f"{len(self.errors):,} bad row(s) in the data ({kinds}); on_bad_input='error' stops here:\n{shown}{more}",
            fix="fix or remove those rows/files, or pass --on-bad-input skip (on_bad_input='skip') to drop them (they are listed in the data report)",
        )

    def check(self, split: str, rows: list[int]) -> None:
        """Check the inputs of ``rows`` of a source split (each row once)."""
        rows = [r for r in rows if (split, r) not in self.verdicts]
        if not rows:
            return
        if self.modality != "image":
            for r in rows:
                self.verdicts[(split, r)] = None
            return
        if self.source.trusted_mode is not None:  # built-in data: converted and checked when it was built
            for r in rows:
                self.verdicts[(split, r)] = None
                self.modes[(split, r)] = self.source.trusted_mode
            return
        self._check_images(split, rows)

    def _check_images(self, split: str, rows: list[int]) -> None:
        """Decode each image once (threads; PIL releases the GIL), recording its mode or why it fails.

        Results are cached per split fingerprint (which changes when a file changes), so loading
        the same folder again does not decode it again.
        """
        from concurrent.futures import ThreadPoolExecutor

        from tqdm.auto import tqdm

        cached = self._cache(split)
        todo = []
        for r in rows:
            hit = cached.get(str(r))
            if hit is None:
                todo.append(r)
                continue
            mode, reason, file = hit
            self.verdicts[(split, r)] = reason
            if reason is None:
                self.modes[(split, r)] = mode
            else:
                self.record_bad(split, r, reason, file=file)
        if todo:
            raw_col = self._raw_image_column(split)
            decode = self.ctx.decode
            workers = max(1, min(8, os.cpu_count() or 1))
            bar = tqdm(total=len(todo), desc=f"checking images ({split})", unit="img", disable=not self.ctx.progress or len(todo) < 200, leave=False)
            try:
                with ThreadPoolExecutor(workers) as pool:
                    for start in range(0, len(todo), 512):
                        chunk = todo[start : start + 512]
                        values = raw_col(chunk)
                        for r, v, (mode, reason) in zip(chunk, values, pool.map(lambda v: _inspect_image(v, decode), values)):
                            self.verdicts[(split, r)] = reason
                            cached[str(r)] = [mode, reason, image_name(v)]
                            if reason is None:
                                self.modes[(split, r)] = mode
                            else:
                                self.record_bad(split, r, reason, file=image_name(v))
                        bar.update(len(chunk))
            finally:
                bar.close()
            self._save_cache(split, cached)
        report = self.ctx.report
        report.checked[split] = report.checked.get(split, 0) + len(rows)

    def _cache_file(self, split: str) -> Path | None:
        ds = self.source.splits[split]
        if not ds.cache_files:  # in-memory data: no stable identity worth a file
            return None
        from tlhub.data.builtin import cache_root

        key = hashlib.sha256(f"v1|{ds._fingerprint}|{self.column}".encode()).hexdigest()[:24]
        return cache_root() / "image-checks" / f"{key}.json"

    def _cache(self, split: str) -> dict[str, list]:
        """The split's check results so far (read from disk on first use)."""
        if split not in self._caches:
            data: dict[str, list] = {}
            path = self._cache_file(split)
            if path is not None and path.is_file():
                try:
                    import json

                    data = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    data = {}
            self._caches[split] = data
        return self._caches[split]

    def _save_cache(self, split: str, data: dict[str, list]) -> None:
        path = self._cache_file(split)
        if path is None:
            return
        import json

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:  # a read-only cache only costs time
            pass

    def _raw_image_column(self, split: str):
        """A function rows -> raw values ({"bytes", "path"} dicts, or None) of the input column."""
        import datasets

        ds, col = self.source.splits[split], self.column
        if isinstance(ds.features[col], datasets.Image):
            raw = ds.select_columns([col]).cast_column(col, datasets.Image(decode=False))
            return lambda rows: raw[rows][col]
        paths = self.image_paths(split)
        return lambda rows: [{"path": paths[r], "bytes": None} if paths[r] else None for r in rows]

    def image_paths(self, split: str) -> list[str | None]:
        """Image paths from the split's text input column, relative paths resolved against the data file's folder."""
        if split not in self._paths:
            files = self.source.split_files.get(split) or []
            base = Path(files[0]).parent if len(files) == 1 and Path(files[0]).is_file() else self.source.base_dir
            out = []
            for v in self.source.splits[split].data.column(self.column).to_pylist():
                if v is None or not str(v).strip():
                    out.append(None)
                    continue
                p = Path(str(v).strip()).expanduser()
                if not p.is_absolute() and base is not None:
                    p = base / p
                out.append(str(p))
            self._paths[split] = out
        return self._paths[split]


def _inspect_image(value, decode) -> tuple[str | None, str | None]:
    """Decode one image fully: (original PIL mode, None) or (None, reason)."""
    from PIL import Image, UnidentifiedImageError

    from tlhub.adapters.images import to_rgb

    if value is None:
        return None, "no image (empty cell)"
    path = value.get("path") if isinstance(value, dict) else None
    data = value.get("bytes") if isinstance(value, dict) else None
    try:
        if data:
            image = Image.open(io.BytesIO(data))
        elif path:
            if os.path.isdir(path):
                return None, "is a folder, not an image file"
            if not os.path.isfile(path):
                return None, "image file not found"
            image = Image.open(path)
        else:
            return None, "no image (empty cell)"
        with image:
            mode = image.mode
            image.load()
            if image.width == 0 or image.height == 0:
                return None, "image has zero size"
            converted = to_rgb(image)
            if decode is not None:
                decode(converted)
        return mode, None
    except PermissionError as exc:  # an OSError, but the file may be fine: it is the access that fails
        return None, f"cannot read the image file: permission denied ({exc.filename or path})"
    except UnidentifiedImageError:
        return None, "not an image PIL can read"
    except Image.DecompressionBombError as exc:
        return None, f"image too large ({exc})"
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc) or type(exc).__name__
        if "truncated" in msg.lower() or isinstance(exc, EOFError):
            return None, f"truncated image ({msg})"
        return None, f"corrupt image ({msg})"
    except Exception as exc:  # the adapter's decode failed
        message = exc.message if isinstance(exc, TlhubError) else str(exc)  # without its fix: the report names rows
        return None, f"cannot decode ({type(exc).__name__}: {message})"


def image_name(value) -> str | None:
    """The file name of a raw image value, if it has one."""
    if isinstance(value, dict):
        return value.get("path") or None
    return None
