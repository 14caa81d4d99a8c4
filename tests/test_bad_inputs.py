"""The corpus of bad inputs (issue 11): each case runs the real ``tlhub`` command line in-process
on one bad input and expects tlhub's own error (exit code 2, ``error:`` and ``fix:``, the words
that name the problem), never a traceback, and nothing written before it lost.

To add a kind: append a ``Case`` to ``CASES`` with an id, a ``setup(tmp_path) -> dict`` that
builds the bad input under ``tmp_path`` (the dict fills ``{placeholders}`` in ``argv`` and
``words``; a value with ``close()`` or ``release()``, such as a socket or a lock the setup holds,
is closed after the command), the argv, and the words the error must contain. ``keep`` lists
files (relative to tmp_path) that must be byte-identical after the command. ``patch(monkeypatch,
values)`` sets the environment a case needs (an endpoint, a token); ``check(tmp_path, values)``
asserts more (a planted command did not run). ``code=0`` is a bad input that tlhub handles and
says so: the words must then appear in its output. Keep cases fast: most fail before a model is
built; those that need a backbone use the offline Lite0 / MiniLM.
"""

from __future__ import annotations

import os
import shutil
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
    code: int = 2  # 0: handled, and said so (the words are then looked for in stdout and stderr)
    patch: Callable[[pytest.MonkeyPatch, dict], None] | None = None  # environment the case needs
    check: Callable[[Path, dict], None] | None = None  # further assertions after the command


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


# -- model folders, backbones and run folders, damaged ----------------------------------------------
def _damaged_model(damage: Callable[[Path], None]) -> Callable[[Path], dict]:
    """A copy of the session's saved text model in tmp/model, damaged by ``damage(folder)``; with
    data.csv beside it for evaluate."""

    def setup(tmp):
        model = tmp / "model"
        shutil.copytree(_text_model(), model)
        damage(model)
        texts(tmp)
        return {"model": str(model)}

    return setup


def _truncate(folder: Path, name="model.safetensors") -> None:
    path = folder / name
    os.truncate(path, path.stat().st_size // 2)  # an interrupted copy or download


def _empty(folder: Path, name="model.safetensors") -> None:
    (folder / name).write_bytes(b"")


truncated_weights = _damaged_model(_truncate)
empty_weights = _damaged_model(_empty)
missing_weights = _damaged_model(lambda folder: (folder / "model.safetensors").unlink())
corrupt_record = _damaged_model(lambda folder: _write(folder / "tlhub.json", '{"adapter": "transformers", "labels": ['))
corrupt_eval_json = _damaged_model(lambda folder: _write(folder / "eval_results.json", '{"metrics": {"accuracy": 0.'))


def truncated_backbone(tmp):
    """A timm backbone folder (the offline Lite0, copied) whose weights were cut short, and images."""
    from huggingface_hub import snapshot_download

    shutil.copytree(snapshot_download(LITE0), tmp / "backbone")  # the files, not the cache's links
    _truncate(tmp / "backbone")
    _images(tmp / "data", {"cat": 3, "dog": 3})
    return {}


def _run_folder() -> Path:
    return _text_model().parent  # the session model's output folder: model/, checkpoints/, config.yaml


def corrupt_checkpoint_state(tmp):
    """An output folder whose latest checkpoint has a state.json cut mid-write (by hand or a disk)."""
    shutil.copytree(_run_folder() / "checkpoints", tmp / "out" / "checkpoints", symlinks=True,
                    ignore=shutil.ignore_patterns("best.safetensors"))
    _write(tmp / "out" / "checkpoints" / "latest" / "state.json", '{"state": {"stage_index": 0, "glob')
    texts(tmp)
    return {}


def finished_run(tmp):
    """An output folder holding a finished model and its config, without checkpoints."""
    shutil.copytree(_run_folder() / "model", tmp / "out" / "model")
    shutil.copyfile(_run_folder() / "config.yaml", tmp / "out" / "config.yaml")
    texts(tmp)
    return {}


FINISHED_RUN_FILES = ["out/model/model.safetensors", "out/model/tlhub.json", "out/config.yaml"]


def locked_output(tmp):
    """Another process is training into tmp/out: it holds the folder's lock (here: this process,
    through another open file, which the kernel treats the same way)."""
    from tlhub.fileio import lock_folder

    existing_run(tmp)
    texts(tmp)
    return {"lock": lock_folder(tmp / "out"), "pid": str(os.getpid())}


def output_is_a_file(tmp):
    _write(tmp / "out", "a file where the output folder should go")
    texts(tmp)
    return {}


def unwritable_parent(tmp):
    (tmp / "readonly").mkdir()
    (tmp / "readonly").chmod(0o500)
    texts(tmp)
    return {}


def results_file(tmp):
    _write(tmp / "results.json", '{"mine": true}')
    return single_split_eval(tmp)


# -- publishing ------------------------------------------------------------------------------------
def edited_space(tmp):
    """A Space tlhub wrote, then edited by hand (app.py changed, a file added)."""
    from tlhub.publishing.spaces import build_space

    build_space(str(_text_model()), tmp / "space", include_model=False, model_id="someone/minilm")
    with open(tmp / "space" / "app.py", "a", encoding="utf-8") as f:
        f.write("\n# my own change\n")
    _write(tmp / "space" / "mine.txt", "a file of my own")
    return {"model": str(_text_model())}


def taken_port(tmp):
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)  # another server (a Space already running) listens there
    _write(tmp / "space" / "app.py", "raise SystemExit('the app must not start')\n")
    return {"sock": sock, "port": str(sock.getsockname()[1])}


def refusing_endpoint(tmp):
    """A port on 127.0.0.1 with nothing listening: every connection is refused at once."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return {"model": str(_text_model()), "endpoint": f"http://127.0.0.1:{port}"}


def online_against(monkeypatch, values):
    """Online, against the case's endpoint (127.0.0.1 only), with a made-up token; retries without waiting."""
    import huggingface_hub.constants as hub_constants

    from tlhub.publishing import push

    monkeypatch.setenv("HF_ENDPOINT", values["endpoint"])
    monkeypatch.setenv("HF_TOKEN", "hf_" + "t" * 34)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(push, "RETRY_WAIT", 0.01)


def offline_with_token(monkeypatch, values):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_TOKEN", "hf_" + "t" * 34)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1 sets it


# -- YAML configs ----------------------------------------------------------------------------------
def yaml_file(text: str) -> Callable[[Path], dict]:
    def setup(tmp):
        _write(tmp / "config.yaml", text.replace("TMP", str(tmp)))
        return {}

    return setup


def not_created(name: str) -> Callable[[Path, dict], None]:
    def check(tmp, values):
        assert not (tmp / name).exists(), f"{name} was created: the YAML file's command ran"

    return check


def binary_yaml(tmp):
    (tmp / "config.yaml").write_bytes(bytes(range(128, 256)))
    return {}


# -- text predict with file paths ------------------------------------------------------------------
def text_file(tmp):
    _write(tmp / "reviews.txt", "a lovely film\n\nan awful film\n")
    return model_dir(tmp)


def empty_text_file(tmp):
    _write(tmp / "reviews.txt", "\n  \n")
    return model_dir(tmp)


def text_folder(tmp):
    text_file(tmp)
    (tmp / "reviews").mkdir()
    return model_dir(tmp)


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
    # saved model folders with damaged or missing files: the file is named, never a library traceback
    *[Case(f"model-weights-{kind}-{command}", setup, argv, ["model.safetensors", what, "copy or download the model folder again"],
           keep=["model/tlhub.json"])
      for kind, setup, what in (("truncated", truncated_weights, "truncated"), ("empty", empty_weights, "empty (0 bytes)"))
      for command, argv in (("predict", ["predict", "{model}", "a good film"]),
                            ("evaluate", ["evaluate", "{model}", "--data", "{tmp}/data.csv"]),
                            ("describe", ["describe", "{model}"]))],
    Case("model-weights-missing-predict", missing_weights, ["predict", "{model}", "a good film"],
         ["has no weights file", "no model.safetensors", "copy the whole model folder"]),
    Case("model-record-corrupt-json", corrupt_record, ["predict", "{model}", "a good film"], ["tlhub.json is corrupt", "not JSON"]),
    Case("backbone-weights-truncated-train", truncated_backbone, ["train", "--backbone", "{tmp}/backbone", "--data", "{tmp}/data", "--output-dir", "{tmp}/out"],
         ["backbone/model.safetensors", "truncated"]),
    # run life-cycle: a damaged checkpoint, a finished model, a locked or unusable output folder
    Case("checkpoint-state-json-corrupt", corrupt_checkpoint_state, TEXT_TRAIN + ["--data", "{tmp}/data.csv"],
         ["state.json cannot be read", "--no-resume"], keep=["out/checkpoints/latest/state.json", "out/checkpoints/latest/model.safetensors"]),
    Case("train-over-finished-model", finished_run, TEXT_TRAIN + ["--data", "{tmp}/data.csv"],
         ["already holds a finished model", "--overwrite", "another --output-dir"], keep=FINISHED_RUN_FILES),
    Case("no-resume-over-finished-model", finished_run, TEXT_TRAIN + ["--data", "{tmp}/data.csv", "--no-resume"],
         ["already holds a finished model", "which --no-resume would replace", "--overwrite"], keep=FINISHED_RUN_FILES),
    Case("output-folder-locked", locked_output, TEXT_TRAIN + ["--data", "{tmp}/data.csv"],
         ["in use by another tlhub process", "PID {pid}", "wait for it"], keep=["out/keep.txt"]),
    Case("output-dir-is-a-file", output_is_a_file, TEXT_TRAIN + ["--data", "{tmp}/data.csv"],
         ["cannot use", "/out", "not an existing file"], keep=["out"]),
    Case("output-dir-unwritable", unwritable_parent, ["train", "--backbone", MINILM, "--data", "{tmp}/data.csv", "--output-dir", "{tmp}/readonly/run"],
         ["permission denied", "folder you can write to"], root_skips=True),
    Case("evaluate-output-is-a-file", results_file, ["evaluate", "{model}", "--data", "{tmp}/data.csv", "--output", "{tmp}/results.json"],
         ["--output", "existing file, not a folder"], keep=["results.json"]),
    # publishing: Spaces and pushes of folders that cannot work, an occupied port, a Space edited by hand
    Case("space-model-without-weights", missing_weights, ["space", "{model}", "--out", "{tmp}/space"], ["has no weights file"],
         check=lambda tmp, values: not (tmp / "space").exists() or pytest.fail("a Space was written")),
    Case("space-serve-port-taken", taken_port, ["space", "serve", "{tmp}/space", "--port", "{port}"],
         ["port {port}", "already in use", "--port"]),
    Case("space-over-edited-space", edited_space, ["space", "{model}", "--out", "{tmp}/space", "--no-local-model", "--repo-id", "someone/minilm"],
         ["edited: app.py", "added: mine.txt", "--overwrite"], keep=["space/app.py", "space/mine.txt"]),
    Case("push-dry-run-not-a-model", lambda tmp: _write(tmp / "notes" / "a.txt", "x") and {}, ["push", "{tmp}/notes", "--repo-id", "someone/x", "--dry-run"],
         ["not a model saved by tlhub", "tlhub.json"]),
    Case("push-dry-run-truncated-weights", truncated_weights, ["push", "{model}", "--repo-id", "someone/x", "--dry-run"],
         ["model.safetensors", "truncated"]),
    Case("push-corrupt-eval-json", corrupt_eval_json, ["push", "{model}", "--repo-id", "someone/x", "--dry-run"],
         ["corrupt JSON file"], keep=["model/eval_results.json"]),
    # network: an endpoint that refuses connections (127.0.0.1, nothing listening), offline mode
    Case("push-connection-refused", refusing_endpoint, ["push", "{model}", "--repo-id", "someone/x", "--timeout", "5"],
         ["{endpoint}", "could not be reached", "3 attempts", "HF_ENDPOINT"], patch=online_against),
    Case("push-while-offline", model_dir, ["push", "{model}", "--repo-id", "someone/x"], ["offline mode", "unset HF_HUB_OFFLINE"],
         patch=offline_with_token),
    # YAML configs: a tag that would run code, not a mapping, an unknown key, broken syntax, a folder, binary
    Case("yaml-python-object-tag", yaml_file('backbone: !!python/object/apply:os.system ["touch TMP/PWNED"]\n'), ["train", "{tmp}/config.yaml"],
         ["YAML tag", "nothing in it was run"], check=not_created("PWNED")),
    Case("yaml-not-a-mapping", yaml_file("- backbone\n- data\n"), ["train", "{tmp}/config.yaml"], ["must hold a mapping"]),
    Case("yaml-unknown-key", yaml_file(f"backbone: {MINILM}\nlearning_rate: 0.1\n"), ["train", "{tmp}/config.yaml"],
         ["unknown option", "'learning_rate'"]),
    Case("yaml-syntax-error", yaml_file("backbone: [x\n  data: : :\n"), ["train", "{tmp}/config.yaml"], ["not valid YAML", "line 1"]),
    Case("yaml-config-is-a-folder", lambda tmp: {}, ["train", "{tmp}"], ["is a folder"]),
    Case("yaml-not-utf8", binary_yaml, ["train", "{tmp}/config.yaml"], ["not UTF-8 text"]),
    # text predict given a file path: read as one text per line, and said so; an empty file, a folder
    Case("predict-text-file-is-read", text_file, ["predict", "{model}", "{tmp}/reviews.txt", "--top-k", "1"],
         ["a file, read as 2 text(s), one per line", "reviews.txt:1: a lovely film", "reviews.txt:3: an awful film"], code=0),
    Case("predict-text-empty-file", empty_text_file, ["predict", "{model}", "{tmp}/reviews.txt"], ["holds no text"]),
    Case("predict-text-folder", text_folder, ["predict", "{model}", "{tmp}/reviews"], ["is a folder", "text files"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_clear_error(case: Case, tmp_path, capsys, monkeypatch, offline_assets):
    from tlhub.cli.main import main

    if case.root_skips and os.geteuid() == 0:
        pytest.skip("root reads files without read permission")
    monkeypatch.setenv("TLHUB_CACHE", str(tmp_path / "tlhub-cache"))
    monkeypatch.chdir(tmp_path)
    values = {"tmp": str(tmp_path), **case.setup(tmp_path)}
    try:
        if case.patch is not None:
            case.patch(monkeypatch, values)
        before = {name: (tmp_path / name).read_bytes() for name in case.keep}
        argv = [a.format(**values) for a in case.argv]
        capsys.readouterr()  # what the setup printed is not the command's
        code = main(argv)
    finally:
        for value in values.values():  # a socket or a lock the setup holds
            for name in ("release", "close"):
                if callable(getattr(value, name, None)):
                    getattr(value, name)()
                    break
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    assert code == case.code, f"exit code {code}; stderr:\n{err}"
    if case.code == 2:
        assert "error:" in err and "fix:" in err, err
    said = err if case.code else out + err
    for word in case.words:
        word = word.format(**values)
        assert word.lower() in said.lower(), f"{word!r} not in:\n{said}"
    for name, data in before.items():
        assert (tmp_path / name).read_bytes() == data, f"{name} changed"
    if case.check is not None:
        case.check(tmp_path, values)


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
