"""The local test hub (tests/hubserver) driven by the official huggingface_hub client over HTTP."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.hubserver.fixture import local_hub, local_hub_env  # noqa: F401  (fixtures)

# huggingface_hub's own LFS upload code passes `data=<file>` to httpx2.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

README = "---\nlicense: mit\ntags:\n- tlhub\n---\n# Test model\n"


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo_id(local_hub) -> str:
    return f"{local_hub.user}/repo-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def folder(tmp_path) -> Path:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "weights.bin").write_bytes(os.urandom(1_500_000))  # > 1 MB, binary: the LFS path
    (src / "notes.txt").write_text("small text file\n")
    (src / "sub" / "config.json").write_text('{"hidden": 8}\n')
    (src / "README.md").write_text(README)
    return src


def test_environment_points_at_local_hub(local_hub):
    import huggingface_hub.constants as constants

    assert os.environ["HF_ENDPOINT"] == local_hub.endpoint == constants.ENDPOINT
    assert os.environ["HF_HUB_DISABLE_XET"] == "1" and constants.HF_HUB_DISABLE_XET
    assert "HF_HUB_OFFLINE" not in os.environ and not constants.HF_HUB_OFFLINE
    assert constants.HF_HUB_CACHE == str(local_hub.home / "hub")
    assert HfApi().whoami()["name"] == local_hub.user


def test_environment_is_restored(request, tmp_path):
    """Tests that do not ask for local_hub keep their environment (e.g. HF_HUB_OFFLINE=1)."""
    import huggingface_hub.constants as constants

    before = (constants.ENDPOINT, constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE, os.environ.get("HF_ENDPOINT"))
    hub = request.getfixturevalue("local_hub")  # requested late: local_hub_env did not apply
    assert constants.ENDPOINT != hub.endpoint
    with hub.activate(hf_home=tmp_path / "home"):
        assert constants.ENDPOINT == os.environ["HF_ENDPOINT"] == hub.endpoint
        assert constants.HF_HUB_CACHE == str(tmp_path / "home" / "hub")
        assert hub.api(token=False).repo_exists(f"{hub.user}/nothing-here") is False
    after = (constants.ENDPOINT, constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE, os.environ.get("HF_ENDPOINT"))
    assert after == before


def test_create_repo_conflict(local_hub, repo_id):
    api = HfApi()
    url = api.create_repo(repo_id)
    assert url.repo_id == repo_id and url.endpoint == local_hub.endpoint
    with pytest.raises(HfHubHTTPError) as exc:
        api.create_repo(repo_id)
    assert exc.value.response.status_code == 409
    assert api.create_repo(repo_id, exist_ok=True).repo_id == repo_id
    assert api.repo_exists(repo_id)
    assert not api.repo_exists(f"{local_hub.user}/does-not-exist")


def test_upload_download_round_trip(local_hub, repo_id, folder, tmp_path):
    api = HfApi()
    api.create_repo(repo_id)
    first = api.upload_folder(folder_path=folder, repo_id=repo_id, commit_message="Add model files")

    assert sorted(api.list_repo_files(repo_id)) == [
        ".gitattributes", "README.md", "notes.txt", "sub/config.json", "weights.bin"]
    commits = api.list_repo_commits(repo_id)
    assert [c.title for c in commits] == ["Add model files", "initial commit"]  # one commit for all files
    assert commits[0].commit_id == first.oid

    info = api.model_info(repo_id, files_metadata=True)
    assert info.sha == first.oid and info.private is False
    assert info.card_data["license"] == "mit"
    siblings = {s.rfilename: s for s in info.siblings}
    assert siblings["weights.bin"].lfs.sha256 == sha256(folder / "weights.bin")
    assert siblings["weights.bin"].size == 1_500_000
    assert siblings["notes.txt"].lfs is None

    # What the server stored: a real git commit, an LFS pointer, the object under .git/lfs/objects.
    repo = local_hub.repo_path(repo_id)
    oid = sha256(folder / "weights.bin")
    pointer = git(repo, "show", f"{first.oid}:weights.bin")
    assert pointer == f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize 1500000\n"
    assert sha256(repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid) == oid
    assert git(repo, "show", f"{first.oid}:notes.txt") == "small text file\n"

    path = hf_hub_download(repo_id, "weights.bin")
    assert Path(path).is_relative_to(local_hub.home)  # fresh per-test cache: it came over HTTP
    assert sha256(path) == oid
    snapshot = Path(snapshot_download(repo_id, local_dir=tmp_path / "snapshot"))
    for name in ("weights.bin", "notes.txt", "sub/config.json", "README.md"):
        assert sha256(snapshot / name) == sha256(folder / name), name

    # Second commit: update a file, delete the LFS file and a folder, add one.
    second = api.create_commit(
        repo_id,
        operations=[
            CommitOperationAdd("notes.txt", b"updated\n"),
            CommitOperationAdd("extra/data.txt", b"x" * 10),
            CommitOperationDelete("weights.bin"),
            CommitOperationDelete("sub/"),
        ],
        commit_message="Update notes",
        commit_description="Second commit with deletions.",
        parent_commit=first.oid,
    )
    assert sorted(api.list_repo_files(repo_id)) == [".gitattributes", "README.md", "extra/data.txt", "notes.txt"]
    latest = api.list_repo_commits(repo_id)[0]
    assert (latest.commit_id, latest.title, latest.message) == (
        second.oid, "Update notes", "Second commit with deletions.")
    assert git(repo, "log", "-1", "--format=%B", second.oid).strip() == (
        "Update notes\n\nSecond commit with deletions.")
    assert Path(hf_hub_download(repo_id, "notes.txt")).read_text() == "updated\n"
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "weights.bin")
    # The old revision is still there.
    assert sha256(hf_hub_download(repo_id, "weights.bin", revision=first.oid)) == oid


def test_unchanged_lfs_object_is_not_uploaded_again(local_hub, repo_id, folder):
    api = HfApi()
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=folder / "weights.bin", path_in_repo="a.bin", repo_id=repo_id)
    # Same content under another name: the LFS batch answers "already there" (no upload action).
    api.upload_file(path_or_fileobj=folder / "weights.bin", path_in_repo="b.bin", repo_id=repo_id)
    info = api.model_info(repo_id, files_metadata=True)
    lfs = {s.rfilename: s.lfs.sha256 for s in info.siblings if s.lfs}
    assert lfs["a.bin"] == lfs["b.bin"] == sha256(folder / "weights.bin")


def test_lfs_upload_checks_sha256(local_hub, repo_id):
    api = HfApi()
    api.create_repo(repo_id)
    data = b"\0" * 2048
    oid = hashlib.sha256(data).hexdigest()
    with httpx.Client(trust_env=False) as client:
        batch = client.post(
            f"{local_hub.endpoint}/{repo_id}.git/info/lfs/objects/batch",
            headers={"Authorization": f"Bearer {local_hub.token}"},
            json={"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]},
        ).json()
        href = batch["objects"][0]["actions"]["upload"]["href"]
        assert client.put(href, content=b"\1" * 2048).status_code == 400  # wrong content
        assert client.put(href + "0", content=data).status_code == 403  # tampered signature
        assert client.put(href, content=data).status_code == 200


def test_private_repo(local_hub, repo_id):
    api = HfApi()
    api.create_repo(repo_id, private=True)
    api.upload_file(path_or_fileobj=b"secret\n", path_in_repo="s.txt", repo_id=repo_id)
    assert api.model_info(repo_id).private is True
    anonymous = HfApi(token=False)
    with pytest.raises(RepositoryNotFoundError):
        anonymous.model_info(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo_id, "s.txt", token=False)
    assert Path(hf_hub_download(repo_id, "s.txt")).read_text() == "secret\n"

    api.update_repo_settings(repo_id, private=False)
    assert anonymous.model_info(repo_id).private is False


def test_space_round_trip(local_hub, tmp_path):
    api = HfApi()
    space_id = f"{local_hub.user}/space-{uuid.uuid4().hex[:8]}"
    url = api.create_repo(space_id, repo_type="space", space_sdk="gradio")
    assert url.repo_type == "space" and url.startswith(f"{local_hub.endpoint}/spaces/")
    app = tmp_path / "app.py"
    app.write_text("import gradio as gr\n")
    api.upload_file(path_or_fileobj=app, path_in_repo="app.py", repo_id=space_id, repo_type="space")
    info = api.space_info(space_id)
    assert info.sdk == "gradio" and {s.rfilename for s in info.siblings} == {".gitattributes", "app.py"}
    assert api.list_repo_files(space_id, repo_type="space") == [".gitattributes", "app.py"]
    path = hf_hub_download(space_id, "app.py", repo_type="space")
    assert Path(path).read_text() == "import gradio as gr\n"
    assert local_hub.repo_path(space_id, "space").is_dir()
    with pytest.raises(RepositoryNotFoundError):  # not a model
        api.model_info(space_id)


def test_dataset_round_trip(local_hub):
    api = HfApi()
    dataset_id = f"{local_hub.user}/data-{uuid.uuid4().hex[:8]}"
    api.create_repo(dataset_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="train.csv", repo_id=dataset_id,
                    repo_type="dataset")
    path = snapshot_download(dataset_id, repo_type="dataset")
    assert (Path(path) / "train.csv").read_bytes() == b"a,b\n1,2\n"


def test_invalid_readme_yaml_rejected(local_hub, repo_id):
    api = HfApi()
    api.create_repo(repo_id)
    bad = b"---\nlicense: [mit\n---\n# Broken\n"
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):  # /api/validate-yaml
        api.upload_file(path_or_fileobj=bad, path_in_repo="README.md", repo_id=repo_id)
    # The commit endpoint checks too, for clients that skip the validation call.
    with httpx.Client(trust_env=False) as client:
        r = client.post(
            f"{local_hub.endpoint}/api/models/{repo_id}/commit/main",
            headers={"Authorization": f"Bearer {local_hub.token}", "Content-Type": "application/x-ndjson"},
            content=b'{"key": "header", "value": {"summary": "bad"}}\n'
                    b'{"key": "file", "value": {"path": "README.md", "encoding": "base64", "content": "'
                    + __import__("base64").b64encode(bad) + b'"}}\n',
        )
    assert r.status_code == 400 and "Invalid metadata" in r.json()["error"]
    assert "README.md" not in api.list_repo_files(repo_id)
    api.upload_file(path_or_fileobj=README.encode(), path_in_repo="README.md", repo_id=repo_id)  # valid is fine


def test_bad_token_rejected(local_hub, repo_id):
    HfApi().create_repo(repo_id)
    for token in ("hf_wrong", False):
        api = HfApi(token=token)
        with pytest.raises(HfHubHTTPError) as exc:
            api.create_repo(f"{local_hub.user}/other-{uuid.uuid4().hex[:8]}")
        assert exc.value.response.status_code == 401
        with pytest.raises(HfHubHTTPError) as exc:
            api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
        assert exc.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError):
        HfApi(token="hf_wrong").whoami()
    assert HfApi().list_repo_files(repo_id) == [".gitattributes"]


def test_missing_entry_revision_and_repo(local_hub, repo_id):
    api = HfApi()
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"hello\n", path_in_repo="hello.txt", repo_id=repo_id)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "missing.txt")
    assert not api.file_exists(repo_id, "missing.txt") and api.file_exists(repo_id, "hello.txt")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, "hello.txt", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo_id, revision="no-such-branch")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(f"{local_hub.user}/no-such-repo", "hello.txt")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(f"{local_hub.user}/no-such-repo")
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download(f"{local_hub.user}/no-such-repo")
    with pytest.raises(EntryNotFoundError):
        api.delete_file("missing.txt", repo_id=repo_id)
