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
from tests.publishing.test_card import FASHION_LABELS, build_image_model, build_text_model

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
    from tlhub.publishing.card import validate_card
    from tlhub.cli.main import main

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
    from tlhub.publishing.spaces import build_space

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

    from tlhub.core.prediction import predict
    from tlhub.publishing.spaces import build_space

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
    from tlhub.publishing.spaces import build_space, render_python

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

    from tlhub.core.prediction import predict
    from tlhub.cli.main import main
    from tlhub.publishing.spaces import build_space, serve_space

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


# --------------------------------------------------------------------------------------------
# `tlhub space serve` stops its app


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def test_space_serve_stops_its_app_on_sigterm(text_model, tmp_path):
    import signal
    import sys

    space = tmp_path / "space"
    build = subprocess.run([sys.executable, "-m", "tlhub", "space", str(text_model), "--out", str(space)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_PROXY": "127.0.0.1,localhost"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tlhub", "space", "serve", str(space), "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/", proc, log)
        [app] = _children(proc.pid)
        assert "app.py" in Path(f"/proc/{app}/cmdline").read_text()
        os.kill(proc.pid, signal.SIGTERM)  # to `tlhub space serve` only, as `kill PID` or a service manager does
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM, log.read_text(errors="replace")[-3000:]
        assert not _alive(app), "app.py outlived `tlhub space serve`"
        with socket.socket() as s:  # and the port is free again, for a restarted server
            # SO_REUSEADDR as uvicorn sets it: the test's own requests can leave TIME_WAIT
            # entries on the port for a minute, which block a plain bind but not a server;
            # only a socket still listening there (an app.py that lived on) fails this bind.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --------------------------------------------------------------------------------------------
# the built wheel carries the templates, and `tlhub space` works from it


def test_space_from_an_installed_wheel(image_model, tmp_path):  # about 15 s
    import sys
    import sysconfig
    import zipfile

    repo = Path(__file__).resolve().parents[2]
    # Build from a copy of the sources: an in-tree build leaves build/ behind, whose stale files
    # (modules deleted since) would go into later wheels, and races with other builds of the tree.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(repo / name, src / name)
    for name in ("tlhub", "spaces"):
        shutil.copytree(repo / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    built = subprocess.run([*pip, "wheel", ".", "--no-deps", "--no-build-isolation", "-w", str(dist)], cwd=src, capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    [wheel] = dist.glob("tlhub-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    # every file of the package and of spaces/ is in it (a package missing from pyproject's list fails here)
    expected = {p.relative_to(src).as_posix() for p in (src / "tlhub").rglob("*") if p.is_file()}
    expected |= {"tlhub/publishing/space_templates/" + p.relative_to(src / "spaces").as_posix() for p in (src / "spaces").rglob("*") if p.is_file()}
    assert expected - names == set()
    for needed in ("tlhub/publishing/space_templates/app.py", "tlhub/publishing/space_templates/timm/classifier.py",
                   "tlhub/publishing/space_templates/transformers/classifier.py",
                   "tlhub/publishing/space_templates/tlhub/classifier.py", "tlhub/publishing/space_templates/README.md",
                   "tlhub/publishing/templates/modelcard.md", "tlhub/plugins/templates/image/src/__package__/adapter.py.tmpl",
                   "tlhub/plugins/templates/common/pyproject.toml.tmpl", "tlhub/engine/metrics/accuracy/accuracy.py",
                   "tlhub/engine/configs/fashion-mnist-lite0.yaml"):
        assert needed in names, needed
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)

    # a fresh virtual environment; torch & co. come from this environment's site-packages, added
    # after the venv's own (what --system-site-packages does, but this environment is itself a venv)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    vpy = venv / "bin" / "python"
    vsite = subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    Path(vsite, "zz_base_env.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    inst = subprocess.run([str(vpy), "-m", "pip", "install", "--disable-pip-version-check", "--no-index", "--no-deps", "--force-reinstall", str(wheel)],
                          capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr[-3000:]

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    elsewhere = tmp_path / "cwd"  # not the checkout: nothing may come from the source tree
    elsewhere.mkdir()
    where = subprocess.run([str(vpy), "-c", "import tlhub; from tlhub.publishing.spaces import templates_root; print(tlhub.__file__); print(templates_root())"],
                           cwd=elsewhere, env=env, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr[-3000:]
    module_file, root = where.stdout.split()
    assert Path(module_file).is_relative_to(venv) and Path(root) == Path(vsite) / "tlhub" / "publishing" / "space_templates", where.stdout

    out = tmp_path / "space"
    run = subprocess.run([str(venv / "bin" / "tlhub"), "space", str(image_model), "--out", str(out)], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "Space written to" in run.stdout
    app, template = (out / "app.py").read_text(), (repo / "spaces" / "timm" / "classifier.py").read_text()
    # the shared skeleton around the timm template's classifier, filled in
    assert "import timm" in app and "def load_classifier" in app and "__TLHUB_" not in app and "@CLASSIFIER@" not in app
    assert front_matter(out / "README.md")["sdk"] == "gradio"
    assert (out / "requirements.txt").is_file() and list((out / "examples").iterdir())


def test_rebuilding_a_space_keeps_hand_edits_unless_told_to_overwrite(image_model, tmp_path, capsys):
    from tlhub.cli.main import main
    from tlhub.publishing.spaces import SPACE_MANIFEST

    out = tmp_path / "space"
    cmd = ["space", str(image_model), "--out", str(out), "--repo-id", "alice/lite0-fashion", "--no-local-model"]
    assert main(cmd) == 0
    assert main(cmd) == 0  # untouched since tlhub wrote it: rebuilt without asking
    capsys.readouterr()

    app = out / "app.py"
    app.write_text(app.read_text() + "\n# my tweak\n")
    (out / "notes.md").write_text("mine")
    (out / "requirements.txt").unlink()
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(cmd) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "edited: app.py" in err and "added: notes.md" in err and "removed: requirements.txt" in err
    assert "fix: pass --overwrite" in err
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    # a Space from before the record existed cannot be told apart from a hand-edited one
    (out / SPACE_MANIFEST).unlink()
    (out / "notes.md").unlink()
    assert main(cmd) == 2 and "cannot tell" in capsys.readouterr().err

    assert main([*cmd, "--overwrite"]) == 0
    assert "# my tweak" not in app.read_text() and not (out / "notes.md").exists() and (out / "requirements.txt").is_file()
    assert main(cmd) == 0  # and the new build is its own again


def test_every_template_shares_the_skeleton_app(tmp_path):
    """Each template is only its classifier.py; the page, the examples and the model's source are
    the one skeleton's, so a fix there reaches every Space (and plugins' templates shrink to a file)."""
    from tlhub.errors import PublishError
    from tlhub.publishing.spaces import SKELETON, compose_app, render_python, templates_root

    root = templates_root()
    skeleton = (root / SKELETON).read_text()
    tail = skeleton.split("# @CLASSIFIER@\n")[1]
    values = {"MODEL_ID": "alice/x", "TITLE": "t", "DESCRIPTION": "d", "TOP_K": 3, "EXAMPLES": [], "INPUT_COMPONENT": "Image",
              "INPUT_KWARGS": {}, "EXAMPLE_KIND": "image"}
    for name in ("timm", "transformers", "tlhub"):
        app = compose_app(root / name)
        about = (root / name / "classifier.py").read_text().split('"""')[1]
        assert app.endswith(tail) and about.strip() in app.split('"""')[1], name  # docstring into the app's
        assert "def load_classifier" in app and "@ABOUT@" not in app and "@CLASSIFIER@" not in app
        render_python(app, values)  # compiles once filled in
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "classifier.py").write_text("def predict(x):\n    return {}\n")
    with pytest.raises(PublishError, match="load_classifier"):
        compose_app(bad)
