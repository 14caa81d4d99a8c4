"""pytest fixtures: a real local Hugging Face Hub (olah + write-side proxy) on 127.0.0.1.

Use them by importing both names into a test module (or list this module in the root
conftest's ``pytest_plugins``)::

    from tests.hubserver.fixture import local_hub, local_hub_env  # noqa: F401

    def test_push(local_hub):
        api = HfApi()                       # HF_ENDPOINT/HF_TOKEN already point at the local hub
        api.create_repo(f"{local_hub.user}/demo")

``local_hub`` (session scope) starts the servers once and yields a :class:`LocalHub`.
``local_hub_env`` (autouse, function scope) does nothing for tests that do not use
``local_hub``; for those that do (directly or through other fixtures) it points the environment
and ``huggingface_hub`` at the local hub and gives the test a fresh, empty ``HF_HOME``, then
restores everything after the test. Tests that expect ``HF_HUB_OFFLINE=1`` are thus unaffected.

How the endpoint gets to huggingface_hub: ``huggingface_hub.constants`` reads ``HF_ENDPOINT``,
``HF_HOME``, ``HF_HUB_OFFLINE``, ``HF_HUB_DISABLE_XET`` ... once, at import time, and all library
code then reads the module attributes (``constants.ENDPOINT`` etc.) at call time. There is no
public API to reload them (huggingface_hub issue #1172), so besides setting the environment
variables (for subprocesses and for libraries imported later) we patch those attributes with
``pytest.MonkeyPatch``, as huggingface_hub's own test-suite does. ``HfApi(endpoint=...)`` /
:meth:`LocalHub.api` needs none of this. Copies made at import time by other modules are not
patched, except ``datasets.config`` (endpoint and offline flags) when it is already imported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from .server import has_olah, olah_python

SERVER = Path(__file__).with_name("server.py")
USER = "tester"
START_TIMEOUT = 60

_HUB_ENV_VARS_UNSET = (
    "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE", "HF_ASSETS_CACHE", "HUGGINGFACE_ASSETS_CACHE", "HF_XET_CACHE", "HF_TOKEN_PATH",
    "HF_DATASETS_CACHE", "HUGGINGFACE_CO_STAGING",
)


@dataclasses.dataclass
class LocalHub:
    endpoint: str  # e.g. "http://127.0.0.1:41234"
    token: str  # the one token the hub accepts for writes
    user: str  # whoami name and default namespace
    root: Path  # git repositories: root / "models|datasets|spaces" / ORG / NAME
    log: Path  # server and olah output
    home: Path | None = None  # the current test's fresh HF_HOME (set by local_hub_env)

    def api(self, **kwargs):
        """An HfApi bound explicitly to this hub (works without the patched environment)."""
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=kwargs.pop("token", self.token), **kwargs)

    def repo_path(self, repo_id: str, repo_type: str = "model") -> Path:
        """The git repository behind a Hub repo (for assertions on what was stored)."""
        return self.root / f"{repo_type}s" / repo_id

    @contextlib.contextmanager
    def activate(self, hf_home: Path | None = None) -> Iterator["LocalHub"]:
        """Point the environment and huggingface_hub at this hub (and at a fresh `hf_home`, if
        given) inside the block; everything is restored at its end. For module- or class-scoped
        fixtures, where the per-test local_hub_env does not apply."""
        with pytest.MonkeyPatch.context() as mp:
            _patch_hub_env(mp, self, hf_home)
            previous, self.home = self.home, hf_home
            try:
                yield self
            finally:
                self.home = previous


def _patch_hub_env(mp: pytest.MonkeyPatch, hub: LocalHub, hf_home: Path | None) -> None:
    # Import first, so that the import-time values come from the real environment and come back
    # after the restore.
    import huggingface_hub.constants as C

    for name in _HUB_ENV_VARS_UNSET:
        mp.delenv(name, raising=False)
    mp.setenv("HF_ENDPOINT", hub.endpoint)
    mp.setenv("HF_TOKEN", hub.token)
    mp.setenv("HF_HUB_DISABLE_XET", "1")  # else large files go through the Xet protocol
    mp.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    no_proxy = ",".join(filter(None, ["127.0.0.1", "localhost", os.environ.get("NO_PROXY")]))
    mp.setenv("NO_PROXY", no_proxy)
    mp.setenv("no_proxy", no_proxy)

    values = {
        "ENDPOINT": hub.endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        # Hosts the client follows redirects to and sends the token to.
        "HF_URL_HOSTS": frozenset(C.HF_URL_HOSTS | {"127.0.0.1"}),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
    }
    if hf_home is not None:
        hf_home = Path(hf_home)
        hf_home.mkdir(parents=True, exist_ok=True)
        mp.setenv("HF_HOME", str(hf_home))
        hub_cache, assets = str(hf_home / "hub"), str(hf_home / "assets")
        values.update({
            "HF_HOME": str(hf_home),
            "default_cache_path": hub_cache, "HUGGINGFACE_HUB_CACHE": hub_cache, "HF_HUB_CACHE": hub_cache,
            "default_assets_cache_path": assets, "HUGGINGFACE_ASSETS_CACHE": assets, "HF_ASSETS_CACHE": assets,
            "default_xet_cache_path": str(hf_home / "xet"), "HF_XET_CACHE": str(hf_home / "xet"),
            "HF_TOKEN_PATH": str(hf_home / "token"), "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
            "CHECK_FOR_UPDATE_DONE_PATH": str(hf_home / ".check_for_update_done"),
            "CHECK_FOR_SKILL_UPDATE_DONE_PATH": str(hf_home / ".check_for_skill_update_done"),
            "AGENT_HARNESSES_PATH": str(hf_home / ".agent_harnesses.json"),
        })
    for name, value in values.items():
        if hasattr(C, name):
            mp.setattr(C, name, value)

    datasets_config = sys.modules.get("datasets.config")
    if datasets_config is not None:  # copies made when `datasets` was imported
        for name, value in {
            "HF_ENDPOINT": hub.endpoint,
            "HUB_DATASETS_URL": hub.endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}",
            "HF_HUB_OFFLINE": False,
            "HF_DATASETS_OFFLINE": False,
        }.items():
            if hasattr(datasets_config, name):
                mp.setattr(datasets_config, name, value)


def _olah_problem() -> str | None:
    """Why olah cannot be started, or None."""
    python = olah_python()
    if has_olah(python):
        return None
    return (f"olah is not installed for {python}: run scripts/setup.sh (.venv-olah), pip install olah==0.5.4, "
            f"or set TLHUB_OLAH_PYTHON to a Python that has it (see tests/hubserver/README.md)")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and olah: both are in the process group we created for the server."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group (e.g. olah)
    proc.wait()


@pytest.fixture(scope="session")
def local_hub(tmp_path_factory) -> Iterator[LocalHub]:
    """Start olah and the write-side proxy on free loopback ports for the whole session."""
    problem = _olah_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)

    base = tmp_path_factory.mktemp("local_hub")
    root, log = base / "repos", base / "hubserver.log"
    token = f"hf_local_{secrets.token_hex(16)}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--root", str(root), "--port", "0", "--token", token,
             "--user", USER, "--workdir", str(base / "olah")],
            stdout=out, stderr=subprocess.STDOUT, cwd=base, start_new_session=True,
        )
    try:
        endpoint = _wait_ready(proc, log)
    except BaseException:
        _stop(proc)
        raise
    try:
        yield LocalHub(endpoint=endpoint, token=token, user=USER, root=root, log=log)
    finally:
        _stop(proc)


def _wait_ready(proc: subprocess.Popen, log: Path) -> str:
    """The server prints its address once olah answers; then its own health check must pass."""
    deadline = time.monotonic() + START_TIMEOUT
    endpoint = None
    with httpx.Client(trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if endpoint is None:
                match = re.search(r"local hub: (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
                endpoint = match and match.group(1)
            if endpoint is not None:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{endpoint}/_hubserver/health", timeout=5).status_code == 200:
                        return endpoint
            time.sleep(0.1)
    olah_log = log.parent / "olah" / "olah.log"
    tail = log.read_text(errors="replace")[-3000:]
    if olah_log.exists():
        tail += "\n--- olah.log ---\n" + olah_log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"local hub did not start (exit code {proc.poll()}):\n{tail}")


@pytest.fixture(autouse=True)
def local_hub_env(request, tmp_path_factory) -> Iterator[None]:
    """For tests that use local_hub: environment pointing at it and a fresh HF_HOME."""
    if "local_hub" not in request.fixturenames:
        yield
        return
    hub: LocalHub = request.getfixturevalue("local_hub")
    with hub.activate(hf_home=tmp_path_factory.mktemp("hf_home")):
        yield
