"""Built-in datasets: real labelled data that works offline, for demos, tests and benchmarks.

Two are built in, both from packages of ordinary registries (the Hugging Face Hub may be out of
reach):

``fashion-mnist``
    Zalando's Fashion-MNIST (60,000 train / 10,000 test 28x28 greyscale images, 10 clothing
    classes), from the gzipped IDX files of Debian's ``dataset-fashion-mnist`` package
    (``/usr/share/datasets/fashion-mnist``). The same data as the Hub's ``zalando-datasets/fashion_mnist``.

``vader-movies``
    The 10,605 human-rated movie-review sentences of Hutto & Gilbert (ICWSM 2014), shipped in the
    *source* distribution of ``vaderSentiment`` 3.3.2 on PyPI (the wheel lacks them). The label is
    the sign of the mean rating ("negative" / "positive"; the 37 sentences rated exactly 0 are
    dropped). There is no official split: the test split follows Protocol B of the project's
    anchors: the rows (zeros dropped, in file order) are shuffled with ``random.Random(0)`` and the
    last 2,000 are the test split, the other 8,568 the training split (kept in shuffled order).

Each is converted once into a ``datasets`` Arrow folder (``save_to_disk``) under the tlhub cache
(``$TLHUB_CACHE/datasets``, default ``~/.cache/tlhub/datasets``) and memory-mapped afterwards.
Columns: ``input`` (``Image()`` or string), ``label`` (``ClassLabel`` with the real names), plus
provenance columns (``index`` / ``id``, ``mean_rating``) that :func:`tlhub.data.loading.load_data` drops.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

from tlhub.errors import DataError

FASHION_MNIST_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

VADER_VERSION = "3.3.2"
VADER_SDIST = f"vaderSentiment-{VADER_VERSION}.tar.gz"
VADER_SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
VADER_MEMBER = "movieReviewSnippets_GroundTruth.txt"
VADER_TEST_SIZE = 2000
VADER_LABELS = ["negative", "positive"]

#: Provenance and licence of each built-in dataset, for data reports and model cards.
BUILTIN_INFO: dict[str, dict[str, Any]] = {
    "fashion-mnist": {
        "name": "fashion-mnist",
        "source_name": "fashion_mnist",
        "hub_id": "zalando-datasets/fashion_mnist",  # the same data on the Hub (for model-card metadata)
        "pretty_name": "Fashion-MNIST",
        "modality": "image",
        "task": "image-classification",
        "labels": FASHION_MNIST_LABELS,
        "splits": {"train": 60000, "test": 10000},
        "license": "MIT",
        "homepage": "https://github.com/zalandoresearch/fashion-mnist",
        "citation": "Han Xiao, Kashif Rasul, Roland Vollgraf. Fashion-MNIST: a Novel Image Dataset for Benchmarking "
        "Machine Learning Algorithms. arXiv:1708.07747, 2017.",
        "origin": f"Debian package dataset-fashion-mnist ({FASHION_MNIST_DIR}, gzipped IDX files), converted by tlhub",
        "split_note": "official train/test split, rows in the original file order",
        "image_mode": "L",
        "image_size": [28, 28],
        "version": 1,
    },
    "vader-movies": {
        "name": "vader-movies",
        "source_name": "vader-movies (Hutto & Gilbert 2014 movie-review sentences, from Pang & Lee 2004)",
        "hub_id": None,
        "pretty_name": "VADER movie-review sentences",
        "modality": "text",
        "task": "text-classification",
        "labels": VADER_LABELS,
        "splits": {"train": 8568, "test": VADER_TEST_SIZE},
        "license": "MIT (vaderSentiment); sentences derived from the Pang & Lee (2004) review set",
        "homepage": "https://github.com/cjhutto/vaderSentiment",
        "citation": "C.J. Hutto, Eric Gilbert. VADER: A Parsimonious Rule-based Model for Sentiment Analysis of Social "
        "Media Text. ICWSM 2014. Sentences from Bo Pang, Lillian Lee. A Sentimental Education. ACL 2004.",
        "origin": f"PyPI source distribution {VADER_SDIST} (sha256 {VADER_SDIST_SHA256[:16]}...), "
        f"additional_resources/hutto_ICWSM_2014.tar.gz -> {VADER_MEMBER}",
        "split_note": "no official split; Protocol B: rows with a non-zero mean rating, in file order, shuffled with "
        "random.Random(0); the last 2,000 are the test split, the rest the training split (in shuffled order)",
        "label_rule": "sign of the mean human rating (-4..4); rows rated exactly 0 are dropped",
        "version": 1,
    },
}

_ALIASES = {
    "fashion-mnist": "fashion-mnist",
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "vader-movies": "vader-movies",
    "vader_movies": "vader-movies",
    "vader": "vader-movies",
}


def builtin_names() -> list[str]:
    return sorted(BUILTIN_INFO)


def resolve_builtin(name: str) -> str | None:
    """The canonical built-in name for ``name`` (``"builtin:fashion_mnist"`` -> ``"fashion-mnist"``), or None."""
    if not isinstance(name, str):
        return None
    key = name.strip()
    explicit = key.lower().startswith("builtin:")
    if explicit:
        key = key.split(":", 1)[1]
    found = _ALIASES.get(key.lower())
    if explicit and found is None:
        from tlhub.errors import suggest

        close = suggest(key, builtin_names())
        raise DataError(
            f"no built-in dataset named {key!r} (built in: {', '.join(builtin_names())})",
            fix=f"did you mean builtin:{close[0]}?" if close else "use one of the built-in names, a local folder or file, or a Hub dataset name",
        )
    return found


def cache_root() -> Path:
    """tlhub's cache folder: ``$TLHUB_CACHE``, else ``$XDG_CACHE_HOME/tlhub``, else ``~/.cache/tlhub``."""
    if os.environ.get("TLHUB_CACHE"):
        return Path(os.environ["TLHUB_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tlhub"


def datasets_cache_dir() -> Path:
    return cache_root() / "datasets"


def builtin_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    info = BUILTIN_INFO[name]
    root = Path(cache_dir).expanduser() if cache_dir is not None else datasets_cache_dir()
    return root / f"{name}-v{info['version']}"


def load_builtin(name: str, *, cache_dir: str | os.PathLike | None = None, progress: bool = True):
    """Load a built-in dataset as a ``DatasetDict`` (building its Arrow cache the first time).

    Returns ``(dataset_dict, info)``: ``info`` is :data:`BUILTIN_INFO` for it, plus build details.
    """
    canonical = resolve_builtin(name)
    if canonical is None:
        raise DataError(f"no built-in dataset named {name!r}", fix=f"use one of: {', '.join(builtin_names())}")
    target = builtin_path(canonical, cache_dir)
    marker = target / "tlhub_builtin.json"
    if not marker.is_file():
        builder = {"fashion-mnist": _build_fashion_mnist, "vader-movies": _build_vader_movies}[canonical]
        _build_atomically(target, lambda tmp: builder(tmp, progress=progress))
    import datasets

    try:
        dsd = datasets.load_from_disk(str(target))
        built = json.loads(marker.read_text(encoding="utf-8"))
    except Exception as exc:  # a damaged cache: say where it is and how to rebuild
        raise DataError(
            f"the cached built-in dataset {canonical!r} at {target} cannot be read ({type(exc).__name__}: {exc})",
            fix=f"delete {target} and run again to rebuild it",
        ) from None
    return dsd, {**BUILTIN_INFO[canonical], "build": built, "path": str(target)}


def _build_atomically(target: Path, build) -> None:
    """Build into a temporary sibling folder, then rename: concurrent builders never see half a cache."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        started = time.perf_counter()
        details = build(tmp)
        details["build_seconds"] = round(time.perf_counter() - started, 2)
        details["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache may be shared
        (tmp / "tlhub_builtin.json").write_text(json.dumps(details, indent=2), encoding="utf-8")
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "tlhub_builtin.json").is_file():  # not a concurrent builder that won: retry once
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# -- Fashion-MNIST --------------------------------------------------------------------------------


def _read_idx(path: Path):
    import numpy as np

    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
        magic = struct.unpack(">I", raw[:4])[0]
        if magic >> 8 != 0x08:  # 0x08 = unsigned byte data
            raise ValueError(f"unexpected IDX magic number {magic:#x}")
        ndim = magic & 0xFF
        dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    except (OSError, EOFError, ValueError, struct.error) as exc:
        raise DataError(
            f"{path} is not a readable gzipped IDX file ({exc})",
            fix="reinstall it: apt-get install --reinstall dataset-fashion-mnist",
        ) from None


def _png_grey_stored(images) -> list[bytes]:
    """Encode 8-bit greyscale arrays (N x H x W) as PNG files with stored (uncompressed) deflate blocks.

    Valid PNGs that every reader opens, written at numpy speed: zlib's level 0 skips the
    compressor, which would otherwise take most of the build (70,000 calls on a small CPU).
    """
    import numpy as np

    n, h, w = images.shape
    rows = np.zeros((n, h, w + 1), dtype=np.uint8)  # each scanline starts with filter type 0
    rows[:, :, 1:] = images

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    head = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    tail = chunk(b"IEND", b"")
    return [head + chunk(b"IDAT", zlib.compress(r.tobytes(), 0)) + tail for r in rows]


def _image_table(png: list[bytes], labels, names: list[str], extra: dict[str, Any] | None = None):
    """A ``datasets.Dataset`` with an ``Image()`` column, built straight from Arrow arrays."""
    import datasets
    import pyarrow as pa

    features = datasets.Features(
        {"input": datasets.Image(), "label": datasets.ClassLabel(names=names), **{k: datasets.Value("int64") for k in (extra or {})}}
    )
    columns = {
        "input": pa.StructArray.from_arrays([pa.array(png, pa.binary()), pa.nulls(len(png), pa.string())], names=["bytes", "path"]),
        "label": pa.array(labels.astype("int64")),
        **{k: pa.array(v) for k, v in (extra or {}).items()},
    }
    table = pa.table(columns).cast(features.arrow_schema)
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=features))


def _build_fashion_mnist(out: Path, *, progress: bool = True, source_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    import datasets
    import numpy as np

    src = Path(source_dir or os.environ.get("TLHUB_FASHION_MNIST_DIR") or FASHION_MNIST_DIR)
    missing = [f for pair in FASHION_MNIST_FILES.values() for f in pair if not (src / f).is_file()]
    if missing:
        raise DataError(
            f"the Fashion-MNIST files are not in {src} (missing: {', '.join(missing)})",
            fix="install them with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or download the four "
            "*-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist and set TLHUB_FASHION_MNIST_DIR to their folder",
        )
    splits, details = {}, {"source_dir": str(src), "files": {}}
    for split, (images_file, labels_file) in FASHION_MNIST_FILES.items():
        images, labels = _read_idx(src / images_file), _read_idx(src / labels_file)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or labels.max() >= len(FASHION_MNIST_LABELS):
            raise DataError(
                f"{src / images_file} and {src / labels_file} do not match (shapes {images.shape} and {labels.shape})",
                fix="reinstall them: apt-get install --reinstall dataset-fashion-mnist",
            )
        png = _png_grey_stored(images)
        splits[split] = _image_table(png, labels, FASHION_MNIST_LABELS, extra={"index": np.arange(len(labels), dtype=np.int64)})
        details["files"][split] = [images_file, labels_file]
    dsd = datasets.DatasetDict(splits)
    with _progress_bars(progress):
        dsd.save_to_disk(str(out))
    details["rows"] = {k: len(v) for k, v in splits.items()}
    return details


# -- VADER movie-review sentences -----------------------------------------------------------------


def _vader_sdist(progress: bool = True) -> Path:
    """The vaderSentiment sdist: from the tlhub download cache, else ``pip download`` (PyPI)."""
    downloads = cache_root() / "downloads"
    local = os.environ.get("TLHUB_VADER_SDIST")
    if local:
        path = Path(local).expanduser()
        if not path.is_file():
            raise DataError(f"TLHUB_VADER_SDIST points at {path}, which does not exist", fix=f"point it at {VADER_SDIST}, or unset it")
        return path
    path = downloads / VADER_SDIST
    if path.is_file():
        return path
    downloads.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", f"vadersentiment=={VADER_VERSION}", "-d", str(downloads)]
    if progress:
        print(f"tlhub: downloading {VADER_SDIST} from PyPI (once) ...", file=sys.stderr)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        proc = None
        reason = str(exc)
    else:
        reason = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        reason = reason[0]
    if proc is None or proc.returncode != 0 or not path.is_file():
        found = sorted(downloads.glob("vader[sS]entiment-*.tar.gz"))
        if proc is not None and proc.returncode == 0 and found:  # pip normalised the file name differently
            return found[0]
        raise DataError(
            f"could not download the vaderSentiment {VADER_VERSION} source distribution from PyPI ({reason})",
            fix=f"on a machine with PyPI access run `pip download --no-deps --no-binary :all: vadersentiment=={VADER_VERSION} -d {downloads}` "
            f"(or copy {VADER_SDIST} there, or set TLHUB_VADER_SDIST to its path)",
        )
    return path


def _read_vader_rows(sdist: Path) -> tuple[list[tuple[int, float, str]], dict[str, Any]]:
    """Rows (id, mean rating, text) of the movie-review file, in file order, plus notes on decoding."""
    import io

    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    try:
        with tarfile.open(sdist, "r:gz") as outer:
            inner_member = next((m for m in outer.getmembers() if m.name.endswith("additional_resources/hutto_ICWSM_2014.tar.gz")), None)
            if inner_member is None:
                raise DataError(f"{sdist} has no additional_resources/hutto_ICWSM_2014.tar.gz", fix=f"use the source distribution of vaderSentiment {VADER_VERSION}, not another file")
            inner_bytes = outer.extractfile(inner_member).read()
        with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
            member = next((m for m in inner.getmembers() if m.name.endswith(VADER_MEMBER)), None)
            if member is None:
                raise DataError(f"hutto_ICWSM_2014.tar.gz in {sdist} has no {VADER_MEMBER}", fix=f"use vaderSentiment {VADER_VERSION}'s source distribution")
            raw = inner.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{sdist} is not a readable vaderSentiment source distribution ({exc})", fix=f"delete {sdist} and run again to download it afresh") from None

    rows, bad_lines, replaced_lines = [], [], []
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:  # the file is valid UTF-8 (checked for 3.3.2); stay robust anyway
            text = line.decode("utf-8", errors="replace")
            replaced_lines.append(lineno)
        parts = text.split("\t", 2)
        try:
            rows.append((int(parts[0]), float(parts[1]), parts[2].strip()))
        except (IndexError, ValueError):
            bad_lines.append(lineno)
    notes = {
        "sdist": sdist.name,
        "sdist_sha256": digest,
        "member": f"additional_resources/hutto_ICWSM_2014.tar.gz/{member.name}",
        "member_sha256": hashlib.sha256(raw).hexdigest(),
        "encoding": "utf-8" if not replaced_lines else "utf-8 with replacement characters",
        "lines_decoded_with_replacement": replaced_lines,
        "unparsable_lines": bad_lines,
    }
    return rows, notes


def _build_vader_movies(out: Path, *, progress: bool = True) -> dict[str, Any]:
    import random

    import datasets

    rows, notes = _read_vader_rows(_vader_sdist(progress))
    zero = [r for r in rows if r[1] == 0]
    empty = [r for r in rows if r[1] != 0 and not r[2]]
    kept = [r for r in rows if r[1] != 0 and r[2]]
    random.Random(0).shuffle(kept)  # Protocol B
    test, train = kept[-VADER_TEST_SIZE:], kept[:-VADER_TEST_SIZE]
    features = datasets.Features(
        {"input": datasets.Value("string"), "label": datasets.ClassLabel(names=VADER_LABELS), "id": datasets.Value("int64"), "mean_rating": datasets.Value("float64")}
    )

    def table(part):
        return datasets.Dataset.from_dict(
            {"input": [r[2] for r in part], "label": [int(r[1] > 0) for r in part], "id": [r[0] for r in part], "mean_rating": [r[1] for r in part]},
            features=features,
        )

    dsd = datasets.DatasetDict({"train": table(train), "test": table(test)})
    with _progress_bars(progress):
        dsd.save_to_disk(str(out))
    notes.update(
        rows_in_file=len(rows),
        dropped_zero_rating=[r[0] for r in zero],
        dropped_empty_text=[r[0] for r in empty],
        rows={"train": len(train), "test": len(test)},
    )
    return notes


class _progress_bars:
    """Turn ``datasets``' progress bars off for a block when ``enabled`` is false, then restore them."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.changed = False

    def __enter__(self):
        from datasets.utils import _tqdm as ds_tqdm

        if not self.enabled and not ds_tqdm.are_progress_bars_disabled():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds_tqdm.disable_progress_bars()
            self.changed = ds_tqdm.are_progress_bars_disabled()
        return self

    def __exit__(self, *exc):
        from datasets.utils import _tqdm as ds_tqdm

        if self.changed:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds_tqdm.enable_progress_bars()
        return False
