"""The corpus of bad inputs (issue 11): each case runs the real ``tlhub`` command line in-process
on one bad input and expects tlhub's own error (exit code 2, ``error:`` and ``fix:``, the words
that name the problem), never a traceback, and nothing written before it lost.

To add a kind: append a ``Case`` to ``CASES`` with an id, a ``setup(tmp_path) -> dict`` that
builds the bad input under ``tmp_path`` (the dict fills ``{placeholders}`` in ``argv``), the
argv, and the words the error must contain. ``keep`` lists files (relative to tmp_path) that
must be byte-identical after the command. Keep cases fast: most fail before a model is built;
those that need a backbone use the offline Lite0 / MiniLM.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

LITE0 = "tlhub-offline/tf_efficientnet_lite0.in1k"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[Path], dict]
    argv: list[str]
    words: list[str]  # each must appear in stderr (case-insensitive)
    keep: list[str] = field(default_factory=list)  # files under tmp_path that must survive unchanged
    root_skips: bool = False  # permission cases: root reads every file anyway


# -- builders of bad inputs ------------------------------------------------------------------------
def _png(path: Path, size=(8, 8)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (30, 60, 90)).save(path)
    return path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _images(root: Path, layout: dict[str, int]) -> None:
    for folder, n in layout.items():
        for i in range(n):
            _png(root / folder / f"{i}.png")


def flat_folder(tmp):
    _images(tmp / "data", {".": 4})
    return {}


def one_class(tmp):
    _images(tmp / "data", {"cat": 4})
    return {}


def split_folders_without_classes(tmp):
    _images(tmp / "data", {"train": 4, "test": 2})
    return {}


def nested_too_deep(tmp):
    _images(tmp / "data", {"cat/sub": 3, "dog/sub": 3})
    return {}


def mixed_depths(tmp):
    _images(tmp / "data", {"cat": 3, "dog/extra": 3})
    return {}


def loose_images(tmp):
    _images(tmp / "data", {"cat": 3, "dog": 3, ".": 2})
    return {}


def header_only_csv(tmp):
    _write(tmp / "data.csv", "text,label\n")
    return {}


def empty_csv(tmp):
    _write(tmp / "data.csv", "")
    return {}


def empty_json_array(tmp):
    _write(tmp / "data.json", "[]\n")
    return {}


def texts(tmp, rows=None):
    rows = rows or [(f"good film {i}", "pos") for i in range(6)] + [(f"bad film {i}", "neg") for i in range(6)]
    _write(tmp / "data.csv", "text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    return {}


def folder_as_image_path(tmp):
    # a table of image paths where every path of one class is a folder: that class has no rows
    for i in range(3):
        _png(tmp / "imgs" / f"cat{i}.png")
        (tmp / "imgs" / f"dogdir{i}").mkdir(parents=True)
    _write(tmp / "data.csv", "image,label\n" + "".join(f"imgs/cat{i}.png,cat\n" for i in range(3)) + "".join(f"imgs/dogdir{i},dog\n" for i in range(3)))
    return {}


def unreadable_class(tmp):
    # every image of one class is unreadable (permission denied): one class would be left
    _images(tmp / "data", {"cat": 3, "dog": 3})
    for p in (tmp / "data" / "dog").iterdir():
        p.chmod(0)
    return {}


def all_corrupt_class(tmp):
    _images(tmp / "data", {"cat": 3})
    for i in range(3):
        _write(tmp / "data" / "dog" / f"{i}.png", "not a png")
    return {}


def decompression_bomb(tmp):
    # a real bomb: a few KB of PNG that would decode to 400 megapixels (PIL's limit is ~89)
    from PIL import Image

    Image.new("1", (20_000, 20_000)).save(tmp / "bomb.png")
    return {}


def model_dir(tmp):
    """A tiny real model folder (text, MiniLM) to evaluate/predict with, built once per session."""
    return {"model": str(_text_model())}


_TEXT_MODEL: list[Path] = []


def _text_model() -> Path:
    if not _TEXT_MODEL:
        import tempfile

        import tlhub

        root = Path(tempfile.mkdtemp(prefix="tlhub-bad-inputs-"))
        data = root / "train.csv"
        rows = [(f"good film {i}", "pos") for i in range(8)] + [(f"bad film {i}", "neg") for i in range(8)]
        _write(data, "text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
        result = tlhub.train(backbone=MINILM, data=str(data), strategy="feature-extraction", probe_epochs=1,
                             output_dir=str(root / "run"), cache_dir=str(root / "features"), test_split=None)
        _TEXT_MODEL.append(result.model_dir)
    return _TEXT_MODEL[0]


def single_split_eval(tmp):
    texts(tmp)
    return model_dir(tmp)


def existing_run(tmp):
    _write(tmp / "out" / "keep.txt", "a file of an earlier run")
    return {}


TRAIN = ["train", "--backbone", LITE0, "--output-dir", "{tmp}/out"]
TEXT_TRAIN = ["train", "--backbone", MINILM, "--output-dir", "{tmp}/out"]

CASES = [
    # image-folder layouts (fail before any model is built)
    Case("flat-image-folder", flat_folder, TRAIN + ["--data", "{tmp}/data"], ["no class folders", "one folder per class"]),
    Case("one-class-folder", one_class, TRAIN + ["--data", "{tmp}/data"], ["single class folder", "cat/"]),
    Case("split-folders-no-classes", split_folders_without_classes, TRAIN + ["--data", "{tmp}/data"], ["no class folders", "split folders"]),
    Case("nested-too-deep", nested_too_deep, TRAIN + ["--data", "{tmp}/data"], ["too deep", "'sub'"]),
    Case("mixed-depths", mixed_depths, TRAIN + ["--data", "{tmp}/data"], ["different folder depths"]),
    Case("images-beside-class-folders", loose_images, TRAIN + ["--data", "{tmp}/data"], ["not in any class folder"]),
    # tables with no rows
    Case("header-only-csv", header_only_csv, TEXT_TRAIN + ["--data", "{tmp}/data.csv"], ["header row", "no data rows"]),
    Case("empty-csv", empty_csv, TEXT_TRAIN + ["--data", "{tmp}/data.csv"], ["is empty"]),
    Case("empty-json-array", empty_json_array, TEXT_TRAIN + ["--data", "{tmp}/data.json"], ["no records"]),
    # classes whose every input is unusable (dropped; here only one class would be left)
    Case("class-of-folders-not-images", folder_as_image_path, TRAIN + ["--data", "{tmp}/data.csv", "--input-column", "image"], ["'dog'", "at least two classes"]),
    Case("class-all-permission-denied", unreadable_class, TRAIN + ["--data", "{tmp}/data"], ["'dog'", "at least two classes"], root_skips=True),
    Case("class-all-corrupt", all_corrupt_class, TRAIN + ["--data", "{tmp}/data"], ["'dog'", "at least two classes"]),
    # config values (fail when the config is created)
    Case("crop-pct-zero", texts, TRAIN + ["--data", "{tmp}/data.csv", "--crop-pct", "0"], ["crop_pct"]),
    Case("max-length-zero", texts, TEXT_TRAIN + ["--data", "{tmp}/data.csv", "--max-length", "0"], ["max_length"]),
    Case("image-size-absurd", texts, TRAIN + ["--data", "{tmp}/data.csv", "--image-size", "100000"], ["image_size", "4096"]),
    Case("output-dir-empty", texts, ["train", "--data", "{tmp}/data.csv", "--output-dir", ""], ["output_dir"]),
    Case("num-workers-negative", texts, TEXT_TRAIN + ["--data", "{tmp}/data.csv", "--num-workers", "-1"], ["num_workers"]),
    Case("drop-rate-above-one", texts, TEXT_TRAIN + ["--data", "{tmp}/data.csv", "--drop-rate", "1.5"], ["drop_rate"]),
    Case("bad-value-keeps-old-run", existing_run, TEXT_TRAIN + ["--data", "x.csv", "--num-workers", "-2"], ["num_workers"], keep=["out/keep.txt"]),
    # evaluation of single-split data: the missing split is named, with the splits there are
    Case("evaluate-missing-split", single_split_eval, ["evaluate", "{model}", "--data", "{tmp}/data.csv", "--split", "validation"],
         ["'validation' is not in the data", "'train'", "--split"]),
    # a decompression bomb at predict time
    Case("predict-decompression-bomb", decompression_bomb, ["predict", LITE0, "{tmp}/bomb.png"], ["bomb.png", "too large"]),
    # backbone names: a relative path that does not exist, an unknown adapter prefix
    Case("relative-path-missing", lambda tmp: (tmp / "models").mkdir() or {}, ["describe", "models/mine"],
         ["local path", "does not exist"]),
    Case("dot-path-missing", lambda tmp: {}, ["describe", "./models/mine"], ["local path", "does not exist"]),
    Case("unknown-adapter-prefix", lambda tmp: {}, ["describe", "nonsense:foo/bar"], ["'nonsense'", "installed adapters", "transformers"]),
    # space serve: a port outside 1..65535
    Case("space-serve-port-out-of-range", lambda tmp: {}, ["space", "serve", "{tmp}", "--port", "99999"], ["--port", "65535"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_clear_error(case: Case, tmp_path, capsys, monkeypatch, offline_assets):
    from tlhub.cli.main import main

    if case.root_skips and os.geteuid() == 0:
        pytest.skip("root reads files without read permission")
    monkeypatch.setenv("TLHUB_CACHE", str(tmp_path / "tlhub-cache"))
    monkeypatch.chdir(tmp_path)
    values = {"tmp": str(tmp_path), **case.setup(tmp_path)}
    before = {name: (tmp_path / name).read_bytes() for name in case.keep}
    argv = [a.format(**values) for a in case.argv]
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert code == 2, f"exit code {code}; stderr:\n{err}"
    assert "error:" in err and "fix:" in err, err
    for word in case.words:
        assert word.lower() in err.lower(), f"{word!r} not in:\n{err}"
    for name, data in before.items():
        assert (tmp_path / name).read_bytes() == data, f"{name} changed"


def test_evaluate_scores_a_single_split_file(tmp_path, capsys, offline_assets):
    """The fix of the case above works: a single CSV (one split, 'train') is scored as it is."""
    from tlhub.cli.main import main

    texts(tmp_path)
    model = _text_model()
    assert main(["evaluate", str(model), "--data", str(tmp_path / "data.csv"), "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "train" and out["num_samples"] == 12
    assert main(["evaluate", str(model), "--data", str(tmp_path / "data.csv"), "--split", "all", "--json"]) == 0
