"""``tlhub push`` against a real local Hub (tests/hubserver): nothing of huggingface_hub is patched.

What is pushed is read back with the ordinary clients (``snapshot_download``, ``timm``'s
``hf-hub:``, transformers' ``from_pretrained``/``pipeline``) exactly as anyone would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.hubserver.fixture import local_hub, local_hub_env  # noqa: F401
from tests.publishing.test_card import FASHION_LABELS, LITE0, MINILM, TEXTS, build_image_model, build_text_model


@pytest.fixture(scope="session")
def image_model(tmp_path_factory, offline_assets) -> Path:
    return build_image_model(tmp_path_factory.getbasetemp() / "saved" / "lite0-fashion")


@pytest.fixture(scope="session")
def text_model(tmp_path_factory, offline_assets) -> Path:
    return build_text_model(tmp_path_factory.getbasetemp() / "saved" / "minilm-sentiment")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def front_matter(text: str) -> dict:
    return yaml.safe_load(re.match(r"^---\n(.*?)\n---\n", text, re.S).group(1))


def assert_no_token(token: str, *, folders=(), texts=()) -> None:
    """The token appears in no file under ``folders`` and in none of ``texts``."""
    needle = token.encode()
    for folder in folders:
        for p in Path(folder).rglob("*"):
            if p.is_file():
                assert needle not in p.read_bytes(), f"token found in {p}"
    for text in texts:
        assert token not in text, "token found in captured output"


def push(args: list[str]) -> int:
    from tlhub.cli.main import main

    return main(["push", *args])


# --------------------------------------------------------------------------------------------


def test_push_image_model_then_load_it_with_timm(local_hub, image_model, tmp_path, capfd, caplog):
    import timm
    import torch
    from huggingface_hub import HfApi, ModelCard, hf_hub_download, snapshot_download

    from tlhub.core.prediction import predict
    from tlhub.adapters.images import load_image

    caplog.set_level(logging.DEBUG)
    repo_id = f"{local_hub.user}/lite0-fashion"
    assert push([str(image_model), "--repo-id", repo_id]) == 0
    out, err = capfd.readouterr()

    api = HfApi()  # endpoint and token from the environment, as for any user
    commits = api.list_repo_commits(repo_id)
    evals = json.loads((image_model / "eval_results.json").read_text())
    assert commits[0].title == f"Upload fine-tuned tf_efficientnet_lite0.in1k (accuracy {round(evals['metrics']['accuracy'], 4)} on Fashion-MNIST test)"
    assert "model.safetensors" in commits[0].message
    assert commits[0].title in out

    # every file of the folder, plus the card, in one commit; the weights went through LFS
    local = tmp_path / "snapshot"
    snapshot_download(repo_id, local_dir=local)
    pushed = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file() and ".cache" not in p.parts}
    expected = {p.relative_to(image_model).as_posix() for p in image_model.rglob("*") if p.is_file()}
    assert pushed == expected | {"README.md", ".gitattributes"}
    assert sha256(local / "model.safetensors") == sha256(image_model / "model.safetensors")
    assert (image_model / "model.safetensors").stat().st_size > 1_000_000
    info = api.model_info(repo_id, files_metadata=True)
    weights = next(s for s in info.siblings if s.rfilename == "model.safetensors")
    assert weights.lfs is not None and weights.lfs.sha256 == sha256(image_model / "model.safetensors")
    for name in ("tlhub.json", "eval_results.json", "training_log.json", "images/confusion_matrix.png"):
        assert sha256(local / name) == sha256(image_model / name)

    # the card: metadata equals eval_results.json, validated locally, links resolve to pushed files
    card = ModelCard.load(hf_hub_download(repo_id, "README.md"))
    assert card.data.base_model == LITE0 and card.data.library_name == "timm"
    assert card.data.pipeline_tag == "image-classification" and card.data.license == "apache-2.0"
    by_name = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert by_name["Accuracy (test)"] == evals["metrics"]["accuracy"]
    assert by_name["Macro F1 (test)"] == evals["metrics"]["f1_macro"]
    assert len(by_name) == len(evals["metrics"])
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", card.text):
        assert (local / link).is_file()

    # anyone can load it with timm alone, and it predicts what the local model predicts
    net = timm.create_model(f"hf-hub:{repo_id}", pretrained=True).eval()
    assert net.pretrained_cfg["label_names"] == FASHION_LABELS
    example = sorted((image_model / "examples").glob("*.png"))[0]
    cfg = timm.data.resolve_data_config({}, model=net)
    assert cfg["input_size"] == (3, 96, 96)
    x = timm.data.create_transform(**cfg)(load_image(example)).unsqueeze(0)
    with torch.inference_mode():
        hub_probs = net(x).softmax(-1)[0]
    local_pred = predict(str(image_model), [example], top_k=1)[0][0]
    assert FASHION_LABELS[int(hub_probs.argmax())] == local_pred.label
    assert float(hub_probs.max()) == pytest.approx(local_pred.score, abs=1e-5)

    # the token is nowhere: not in a pushed file, the card, a commit message, the output or the log
    assert_no_token(local_hub.token, folders=[local], texts=[out, err, caplog.text, *(c.title + (c.message or "") for c in commits)])


def test_update_says_what_changed_in_one_commit_and_unchanged_push_is_a_no_op(local_hub, image_model, tmp_path, capfd):
    from huggingface_hub import HfApi

    repo_id = f"{local_hub.user}/lite0-update"
    model = tmp_path / "model"
    shutil.copytree(image_model, model)
    assert push([str(model), "--repo-id", repo_id]) == 0
    api = HfApi()
    first = api.list_repo_commits(repo_id)

    # re-evaluated (different numbers), curves gone
    evals = json.loads((model / "eval_results.json").read_text())
    evals["metrics"]["accuracy"] = 0.5
    (model / "eval_results.json").write_text(json.dumps(evals))
    (model / "images" / "training_curves.png").unlink()
    capfd.readouterr()
    assert push([str(model), "--repo-id", repo_id]) == 0
    out = capfd.readouterr().out
    commits = api.list_repo_commits(repo_id)
    assert len(commits) == len(first) + 1
    title = commits[0].title
    assert title.startswith("Update fine-tuned tf_efficientnet_lite0.in1k (accuracy 0.5 on Fashion-MNIST test): ")
    assert "changed README.md, eval_results.json" in title and "removed images/training_curves.png" in title
    assert "model.safetensors" not in title  # unchanged weights are not sent again
    assert "changed: README.md, eval_results.json" in out
    files = set(api.list_repo_files(repo_id))
    assert "images/training_curves.png" not in files and "images/confusion_matrix.png" in files
    from huggingface_hub import ModelCard, hf_hub_download

    card = ModelCard.load(hf_hub_download(repo_id, "README.md"))
    assert {r.metric_name: r.metric_value for r in card.data.eval_results}["Accuracy (test)"] == 0.5

    # nothing changed: no commit at all
    assert push([str(model), "--repo-id", repo_id, "--message", "should not appear"]) == 0
    assert "up to date" in capfd.readouterr().out
    assert len(api.list_repo_commits(repo_id)) == len(commits)


def test_failed_push_leaves_the_repo_unchanged_and_a_retry_completes_it(local_hub, image_model):
    """Someone commits while tlhub uploads: tlhub's commit is refused as a whole; running it again works."""
    from huggingface_hub import HfApi

    from tlhub.errors import PublishError
    from tlhub.publishing.push import push_model

    repo_id = f"{local_hub.user}/lite0-retry"
    other = local_hub.api()

    def meddle(message: str) -> None:
        if message.startswith("uploading"):
            other.upload_file(path_or_fileobj=b"notes by hand\n", path_in_repo="NOTES.txt", repo_id=repo_id)

    with pytest.raises(PublishError, match="changed while tlhub was pushing") as err:
        push_model(image_model, repo_id, progress=meddle)
    assert "run the same command again" in err.value.fix
    api = HfApi()
    assert set(api.list_repo_files(repo_id)) == {".gitattributes", "NOTES.txt"}  # none of the model's files

    result = push_model(image_model, repo_id)
    files = set(api.list_repo_files(repo_id))
    assert {"model.safetensors", "tlhub.json", "README.md", "eval_results.json"} <= files
    assert "NOTES.txt" in files and result.model.kept == ["NOTES.txt"]  # what we did not write is kept
    assert api.list_repo_commits(repo_id)[0].title.startswith("Upload fine-tuned tf_efficientnet_lite0.in1k")


def test_private_repo_needs_the_token(local_hub, image_model):
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hf_errors

    repo_id = f"{local_hub.user}/lite0-private"
    assert push([str(image_model), "--repo-id", repo_id, "--private"]) == 0
    assert HfApi().repo_info(repo_id).private is True
    with pytest.raises((hf_errors.RepositoryNotFoundError, hf_errors.HfHubHTTPError)):
        HfApi(token=False).repo_info(repo_id)


def test_no_token_bad_token_and_token_inside_a_file_are_refused(local_hub, image_model, tmp_path, monkeypatch, capsys):
    from huggingface_hub import HfApi

    from tlhub.errors import PublishError
    from tlhub.publishing.push import push_model

    repo_id = f"{local_hub.user}/lite0-refused"
    monkeypatch.delenv("HF_TOKEN")  # and HF_HOME is fresh: no stored login either
    assert push([str(image_model), "--repo-id", repo_id]) == 2
    assert "no Hugging Face token" in capsys.readouterr().err

    with pytest.raises(PublishError, match="401") as err:
        push_model(image_model, repo_id, token="hf_wrong_token_123456")
    assert "hf auth login" in err.value.fix

    with pytest.raises(PublishError, match="Connection refused|ConnectError") as err:
        push_model(image_model, repo_id, token=local_hub.token, endpoint="http://127.0.0.1:9")
    assert "HF_ENDPOINT" in err.value.fix

    leaky = tmp_path / "leaky"
    shutil.copytree(image_model, leaky)
    record = json.loads((leaky / "tlhub.json").read_text())
    record["config"]["hub_token"] = local_hub.token
    (leaky / "tlhub.json").write_text(json.dumps(record))
    with pytest.raises(PublishError, match="tlhub.json contains your Hugging Face token"):
        push_model(leaky, repo_id, token=local_hub.token)
    assert not HfApi(token=local_hub.token).repo_exists(repo_id)


def test_push_text_model_then_load_it_with_transformers(local_hub, text_model, tmp_path):
    from huggingface_hub import hf_hub_download
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from tlhub.core.prediction import predict

    repo_id = f"{local_hub.user}/minilm-sentiment"
    assert push([str(text_model), "--repo-id", repo_id]) == 0
    assert sha256(hf_hub_download(repo_id, "model.safetensors")) == sha256(text_model / "model.safetensors")
    assert (text_model / "model.safetensors").stat().st_size > 1_000_000

    model = AutoModelForSequenceClassification.from_pretrained(repo_id)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    tokenizer = AutoTokenizer.from_pretrained(repo_id)
    assert tokenizer("a test")["input_ids"]

    classifier = pipeline("text-classification", model=repo_id, top_k=None)
    texts = [t for t, _ in TEXTS[-4:]]
    local = predict(str(text_model), texts, top_k=2)
    for text, preds in zip(texts, local):
        scores = classifier(text)
        scores = scores[0] if isinstance(scores[0], list) else scores
        hub = {d["label"]: d["score"] for d in scores}
        assert max(hub, key=hub.get) == preds[0].label
        assert hub[preds[0].label] == pytest.approx(preds[0].score, abs=1e-4)

    meta = front_matter(Path(hf_hub_download(repo_id, "README.md")).read_text())
    evals = json.loads((text_model / "eval_results.json").read_text())
    values = [m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]]
    assert values == list(evals["metrics"].values())
    assert meta["base_model"] == MINILM and meta["library_name"] == "transformers"


def test_dry_run_pushes_nothing_and_writes_the_card(local_hub, image_model, tmp_path, capfd):
    from huggingface_hub import HfApi

    model = tmp_path / "model"
    shutil.copytree(image_model, model)
    repo_id = f"{local_hub.user}/lite0-dry"
    assert push([str(model), "--repo-id", repo_id, "--space", "--dry-run"]) == 0
    out = capfd.readouterr().out
    assert "would push" in out and f"spaces/{repo_id}-demo" in out
    assert not HfApi().repo_exists(repo_id)
    assert front_matter((model / "README.md").read_text())["library_name"] == "timm"


def test_dry_run_needs_no_token_but_a_push_does(local_hub, image_model, tmp_path, capfd, monkeypatch):
    from huggingface_hub import get_token

    monkeypatch.delenv("HF_TOKEN")  # and the fixture's fresh HF_HOME holds no stored token
    assert get_token() is None
    model = tmp_path / "model"
    shutil.copytree(image_model, model)
    repo_id = f"{local_hub.user}/lite0-dry-anonymous"
    assert push([str(model), "--repo-id", repo_id, "--space", "--dry-run"]) == 0
    captured = capfd.readouterr()
    assert "would push" in captured.out and f"spaces/{repo_id}-demo" in captured.out
    assert "no Hugging Face token" in captured.err
    assert (model / "README.md").is_file()
    assert push([str(model), "--repo-id", repo_id]) == 2  # a real push still needs one, and says so
    err = capfd.readouterr().err
    assert "no Hugging Face token" in err and "--dry-run needs none" in err
    assert not local_hub.api().repo_exists(repo_id)


# -- an endpoint that never answers ----------------------------------------------------------------
class SilentServer:
    """A real TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed by stop()
                return
            self.accepted.append(conn)  # held open, never read or answered

    def stop(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_endpoint():
    server = SilentServer()
    yield server
    server.stop()


def test_push_to_an_endpoint_that_never_answers_fails_in_bounded_time(silent_endpoint, image_model, tmp_path):
    import os
    import subprocess
    import sys
    import time

    from tlhub.publishing.push import ATTEMPTS

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_HUB_DOWNLOAD_TIMEOUT")}
    env.update(HF_ENDPOINT=silent_endpoint.url, HF_TOKEN="hf_" + "t" * 34, HF_HOME=str(tmp_path / "hf"))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "tlhub", "push", str(image_model), "--repo-id", "alice/lite0-silent",
                           "--timeout", "1"], capture_output=True, text=True, env=env, timeout=120)
    took = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert f"{silent_endpoint.url} did not answer within 1 s ({ATTEMPTS} attempts)" in proc.stderr
    assert "retrying in 1 s (attempt 2 of 3)" in proc.stderr  # it says what it is doing meanwhile
    assert f"fix: check your connection and that HF_ENDPOINT ({silent_endpoint.url})" in proc.stderr
    assert len(silent_endpoint.accepted) >= ATTEMPTS  # the requests really went there
    assert took < 60, took  # attempts of 1 s, waits of 1 + 2 s, interpreter start-up


def test_push_timeouts_apply_only_during_the_push(silent_endpoint, image_model, monkeypatch):
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    from tlhub.errors import PublishError
    from tlhub.publishing.push import push_model

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # as with HF_HUB_OFFLINE unset (read at import)
    before = _http._GLOBAL_CLIENT_FACTORY
    lines: list[str] = []
    with pytest.raises(PublishError, match=re.escape(f"{silent_endpoint.url} did not answer within 0.5 s")) as err:
        push_model(image_model, "alice/lite0-silent", token="hf_" + "t" * 34, endpoint=silent_endpoint.url,
                   timeout=0.5, progress=lines.append)
    assert "--timeout" in err.value.fix
    assert any("retrying" in line for line in lines)
    assert _http._GLOBAL_CLIENT_FACTORY is before  # huggingface_hub's client is as the caller left it
    with pytest.raises(PublishError, match="not a positive number"):
        push_model(image_model, "alice/lite0-silent", token="hf_" + "t" * 34, endpoint=silent_endpoint.url, timeout=0)
