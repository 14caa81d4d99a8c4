"""Gradio Spaces: the folder ``tlhub space`` writes, and a pushed Space really running.

The end-to-end test pushes a model and its Space to the real local Hub, downloads the Space repo
like the Spaces runtime would, starts its ``app.py`` as a subprocess pointed at the local Hub
(analytics and telemetry off, any non-loopback traffic sent to a dead proxy), calls it with
``gradio_client`` and drives it in headless Chromium through Playwright.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from tests.hubserver.fixture import local_hub, local_hub_env  # noqa: F401
from tests.test_cards import FASHION_LABELS, build_image_model, build_text_model

SCREENSHOT_COPY = Path("/tmp/tlhub_space_screenshot.png")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--proxy-server=http://127.0.0.1:9",  # anything not on loopback would go to a dead port, not out
]
DEAD_PROXY = "http://127.0.0.1:9"


@pytest.fixture(scope="session")
def image_model(tmp_path_factory, offline_assets) -> Path:
    return build_image_model(tmp_path_factory.getbasetemp() / "saved" / "lite0-fashion")


@pytest.fixture(scope="session")
def text_model(tmp_path_factory, offline_assets) -> Path:
    return build_text_model(tmp_path_factory.getbasetemp() / "saved" / "minilm-sentiment")


def front_matter(path: Path) -> dict:
    return yaml.safe_load(re.match(r"^---\n(.*?)\n---\n", Path(path).read_text(encoding="utf-8"), re.S).group(1))


def literal(app: Path, name: str):
    """The value assigned to ``name`` at the top of a generated app.py (a Python literal)."""
    import ast

    for node in ast.parse(app.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not assigned in {app}")


# --------------------------------------------------------------------------------------------
# the folder


def test_space_folder_for_an_image_model(image_model, tmp_path, capsys):
    from tlhub.cards import validate_card
    from tlhub.cli import main

    out = tmp_path / "space"
    assert main(["space", str(image_model), "--out", str(out), "--repo-id", "alice/lite0-fashion"]) == 0
    assert "tlhub space serve" in capsys.readouterr().out
    meta = front_matter(out / "README.md")
    assert validate_card((out / "README.md").read_text(), repo_type="space") == []
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["sdk_version"] == metadata.version("gradio")
    assert meta["models"] == ["alice/lite0-fashion"]
    assert meta["license"] == "apache-2.0" and meta["title"] == "lite0-fashion"
    assert meta["emoji"] and meta["colorFrom"] and meta["colorTo"]
    assert 0 < len(meta["short_description"]) <= 60
    # requirements: what app.py imports, pinned to what is installed here (gradio comes from sdk_version)
    reqs = [l for l in (out / "requirements.txt").read_text().splitlines() if l and not l.startswith("#")]
    assert f"timm=={metadata.version('timm')}" in reqs and f"safetensors=={metadata.version('safetensors')}" in reqs
    assert any(r.startswith("torch==") for r in reqs) and not any(r.startswith("gradio") for r in reqs)
    # app.py: the model repo written in, examples copied from the model's examples/
    app = out / "app.py"
    assert literal(app, "MODEL_ID") == "alice/lite0-fashion"
    examples = literal(app, "EXAMPLES")
    assert examples == [f"examples/{p.name}" for p in sorted((image_model / "examples").glob("*.png"))]
    assert all((out / e).read_bytes() == (image_model / e).read_bytes() for e in examples)
    evals = json.loads((image_model / "eval_results.json").read_text())
    assert f"Accuracy {round(evals['metrics']['accuracy'], 4)}" in literal(app, "DESCRIPTION")
    # a local preview copy of the model (never pushed), so `tlhub space serve` works before pushing
    assert (out / "model" / "model.safetensors").read_bytes() == (image_model / "model.safetensors").read_bytes()
    # writing again over our own Space is fine; over someone else's folder it is not
    assert main(["space", str(image_model), "--out", str(out), "--repo-id", "alice/lite0-fashion"]) == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["space", str(image_model), "--out", str(other)]) == 2
    assert "not a Space written by tlhub" in capsys.readouterr().err


def test_space_folder_for_a_text_model(text_model, tmp_path):
    from tlhub.spaces import build_space

    build = build_space(text_model, tmp_path / "space", model_id="alice/minilm-sentiment", include_model=False)
    app = build.path / "app.py"
    assert "from transformers import pipeline" in app.read_text()
    saved = json.loads((text_model / "examples" / "examples.json").read_text())
    assert literal(app, "EXAMPLES") == [e["text"] for e in saved]
    assert literal(app, "INPUT_KWARGS")["label"] == "Text"
    reqs = (build.path / "requirements.txt").read_text()
    assert f"transformers=={metadata.version('transformers')}" in reqs and "timm" not in reqs
    meta = front_matter(build.path / "README.md")
    assert meta["models"] == ["alice/minilm-sentiment"] and meta["emoji"] == "💬"
    assert not (build.path / "model").exists() and "model" not in {Path(f).parts[0] for f in build.files(include_local=True)}


def test_text_space_app_runs_on_its_local_model_copy(text_model, tmp_path, monkeypatch):
    """Before pushing, app.py loads ./model (offline here); its answers are the model's."""
    import runpy

    from tlhub.prediction import predict
    from tlhub.spaces import build_space

    build = build_space(text_model, tmp_path / "space", model_id="alice/not-pushed-yet")
    assert build.has_local_model and "model/config.json" in build.files(include_local=True)
    assert "model/config.json" not in build.files()  # what a push would send
    monkeypatch.chdir(build.path)
    app = runpy.run_path(str(build.path / "app.py"), run_name="space_app")  # not __main__: no launch()
    texts = ["A wonderful, moving film.", "Awful and boring."]
    for text, preds in zip(texts, predict(str(text_model), texts, top_k=2)):
        scores = app["classify"](text)
        assert list(scores) == [p.label for p in preds]
        assert scores[preds[0].label] == pytest.approx(preds[0].score, abs=1e-4)
    assert app["classify"]("   ") == {}


def test_examples_option_templates_and_refusals(image_model, tmp_path):
    from tlhub.errors import PublishError
    from tlhub.spaces import build_space, render_python

    bare = tmp_path / "bare"
    shutil.copytree(image_model, bare)
    shutil.rmtree(bare / "examples")
    extra = tmp_path / "my photo.png"
    shutil.copy(sorted((image_model / "examples").glob("*.png"))[0], extra)
    build = build_space(bare, tmp_path / "s1", model_id="alice/x", examples=[extra])
    assert build.examples == ["examples/my_photo.png"] and (build.path / "examples" / "my_photo.png").is_file()

    with pytest.raises(PublishError, match="does not exist"):
        build_space(bare, tmp_path / "s2", model_id="alice/x", examples=[tmp_path / "missing.png"])
    with pytest.raises(PublishError, match="needs a model"):
        build_space(bare, tmp_path / "s3", include_model=False)
    with pytest.raises(PublishError, match="not a Hub repo id"):
        build_space(bare, tmp_path / "s4", model_id="no-slash")

    # a template of one's own (what a plugin adapter names in SpaceSpec.template)
    own = tmp_path / "template"
    own.mkdir()
    (own / "app.py").write_text("# my demo\nMODEL = __TLHUB_MODEL_ID__\nK = __TLHUB_TOP_K__\nprint(MODEL, K)\n")
    (own / "style.css").write_text("body {}\n")
    build = build_space(bare, tmp_path / "s5", model_id="alice/x", template=own, top_k=2)
    assert literal(build.path / "app.py", "MODEL") == "alice/x" and literal(build.path / "app.py", "K") == 2
    assert (build.path / "style.css").is_file() and (build.path / "README.md").is_file()
    with pytest.raises(PublishError, match="unknown placeholder"):
        render_python("X = __TLHUB_NOPE__\n", {"MODEL_ID": "a/b"})
    with pytest.raises(PublishError, match="not valid Python"):
        render_python("X = (__TLHUB_MODEL_ID__\n", {"MODEL_ID": "a/b"})


# --------------------------------------------------------------------------------------------
# a pushed Space, running


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 150) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                if client.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    raise AssertionError(f"the Space app did not start (exit code {proc.poll()}):\n{log.read_text(errors='replace')[-4000:]}")


def test_pushed_space_runs_against_the_local_hub(local_hub, image_model, tmp_path, capfd):
    from huggingface_hub import HfApi, snapshot_download

    from tlhub.prediction import predict
    from tlhub.cli import main
    from tlhub.spaces import build_space, serve_space

    repo_id, space_id = f"{local_hub.user}/lite0-fashion-sp", f"{local_hub.user}/lite0-fashion-sp-demo"
    assert main(["push", str(image_model), "--repo-id", repo_id, "--space"]) == 0
    out, err = capfd.readouterr()
    api = HfApi()
    assert api.space_info(space_id).id == space_id
    assert api.list_repo_commits(space_id, repo_type="space")[0].title == f"Upload Gradio demo of {repo_id}"

    # linked both ways: the Space lists the model, the model card links to the Space
    space = tmp_path / "space"
    snapshot_download(space_id, repo_type="space", local_dir=space)
    files = {p.relative_to(space).as_posix() for p in space.rglob("*") if p.is_file() and ".cache" not in p.parts}
    assert {"README.md", "app.py", "requirements.txt"} <= files and not any(f.startswith("model/") for f in files)
    assert front_matter(space / "README.md")["models"] == [repo_id]
    card = Path(api.hf_hub_download(repo_id, "README.md")).read_text()
    assert f"{local_hub.endpoint}/spaces/{space_id}" in card
    examples = sorted(space.glob("examples/*.png"))
    assert len(examples) == 3
    for text in (out, err):
        assert local_hub.token not in text
    for p in space.rglob("*"):
        assert not p.is_file() or local_hub.token.encode() not in p.read_bytes()

    # pushing the model again without --space keeps the card's link (nothing changed: no commit)
    commits = len(api.list_repo_commits(repo_id))
    assert main(["push", str(image_model), "--repo-id", repo_id]) == 0
    assert "up to date" in capfd.readouterr().out and len(api.list_repo_commits(repo_id)) == commits

    # `tlhub space USER/NAME` works from the pushed repo too (reads record and examples from the Hub)
    again = build_space(repo_id, tmp_path / "from-repo")
    assert literal(again.path / "app.py", "MODEL_ID") == repo_id and len(again.examples) == 3
    assert not again.has_local_model

    # run the downloaded app.py like the Spaces runtime: no token (public model), fresh cache
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE")}
    env.update(HF_ENDPOINT=local_hub.endpoint, HF_HOME=str(tmp_path / "app-home"), HF_HUB_DISABLE_XET="1",
               HTTP_PROXY=DEAD_PROXY, HTTPS_PROXY=DEAD_PROXY, http_proxy=DEAD_PROXY, https_proxy=DEAD_PROXY,
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    env.pop("GRADIO_ANALYTICS_ENABLED", None)  # serve_space turns analytics off by itself
    log = tmp_path / "app.log"
    with open(log, "wb") as sink:
        proc = serve_space(space, port=port, wait=False, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(url, proc, log)
        # the app fetched the model from the local Hub by its name
        assert (tmp_path / "app-home" / "hub" / f"models--{repo_id.replace('/', '--')}").is_dir()
        expected = {p.name: predict(str(image_model), [p], top_k=1)[0][0] for p in examples}

        from gradio_client import Client, handle_file

        client = Client(url, verbose=False)
        answer = client.predict(handle_file(str(examples[1])), api_name="/classify")
        assert answer["label"] == expected[examples[1].name].label
        assert answer["confidences"][0]["confidence"] == pytest.approx(expected[examples[1].name].score, abs=1e-4)
        assert len(answer["confidences"]) == 5 and {c["label"] for c in answer["confidences"]} <= set(FASHION_LABELS)

        pytest.importorskip("playwright.sync_api", reason="pip install playwright (Debian's chromium is the browser)")
        if not Path(CHROMIUM).is_file():
            pytest.skip("no /usr/bin/chromium")
        from playwright.sync_api import sync_playwright

        shot = tmp_path / "space.png"
        hosts = set()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.on("request", lambda r: hosts.add(r.url.split("/")[2] if "://" in r.url else r.url))
                page.goto(url, wait_until="networkidle")
                page.locator("input[type=file]").first.set_input_files(str(examples[2]))
                page.get_by_role("button", name="Submit").click()
                top = page.locator("[data-testid=label-output-value]")
                top.wait_for(timeout=30_000)
                page.wait_for_function("() => { const e = document.querySelector('[data-testid=label-output-value]'); return e && e.textContent.trim().length > 0 }", timeout=30_000)
                label = top.inner_text().strip()
                page.screenshot(path=str(shot), full_page=True)
            finally:
                browser.close()
        assert label == expected[examples[2].name].label
        assert hosts and all(h.startswith(("127.0.0.1", "data:", "blob:")) for h in hosts), hosts
        assert shot.stat().st_size > 10_000
        shutil.copy(shot, SCREENSHOT_COPY)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert local_hub.token not in log.read_text(errors="replace")
