"""Third-party adapter plugins: real packages, pip-installed, found through entry points only.

- ``plugins/tlhub-sentence-transformers`` and ``plugins/tlhub-audio`` are installed into the test
  environment by ``scripts/setup.sh`` (``pip install -e``); the tests skip, saying so, when they
  are not. Each goes through the conformance kit and the whole pipeline: train (tlhub's normal
  trainer) -> evaluate -> save -> push (the real local Hub) -> Space (its app run and queried).
- ``plugins/broken-example`` (and its ``hijack/`` package) and throwaway packages built here are
  pip-installed into temporary ``--target`` folders, put on the ``PYTHONPATH`` of a subprocess
  running ``tlhub plugins list|doctor``: real entry-point discovery, no mocks.
- ``tlhub plugins new`` scaffolds a plugin per modality; it is pip-installed the same way and its
  own test (the conformance kit) runs in a subprocess.

No pretrained audio weights exist offline: the audio tests use small randomly initialised
wav2vec2/HuBERT encoders and real speech synthesised with espeak-ng. They show that the pipeline
works end to end, not that a pretrained audio encoder transfers well.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from importlib import metadata
from pathlib import Path

import pytest

from tests.hubserver.fixture import local_hub, local_hub_env  # noqa: F401
from tlhub.core.prediction import predict

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
WORDS = ["down", "no", "up", "yes"]
DEAD_PROXY = "http://127.0.0.1:9"
SENTENCES = [
    ("A gripping, beautifully acted film that stays with you.", "positive"),
    ("The worst movie I have seen in years, dull and far too long.", "negative"),
    ("Charming, funny and surprisingly moving.", "positive"),
    ("A tedious mess with wooden dialogue.", "negative"),
    ("One of the most delightful comedies of the decade.", "positive"),
    ("I walked out halfway through; it was unbearable.", "negative"),
    ("Smart writing and a terrific lead performance.", "positive"),
    ("Lifeless, predictable and badly edited.", "negative"),
    ("An absolute joy from start to finish.", "positive"),
    ("The plot makes no sense and the jokes fall flat.", "negative"),
    ("Warm, generous and wonderfully shot.", "positive"),
    ("A boring, pretentious waste of two hours.", "negative"),
    ("Thrilling action and a clever, satisfying ending.", "positive"),
    ("Poorly acted and painfully slow.", "negative"),
    ("A heartfelt story told with real skill.", "positive"),
    ("Cheap, ugly and instantly forgettable.", "negative"),
    ("The cast is superb and the music is lovely.", "positive"),
    ("An embarrassing failure on every level.", "negative"),
    ("Fresh, inventive and often hilarious.", "positive"),
    ("Dreary and depressing without any purpose.", "negative"),
    ("A masterpiece of quiet, careful storytelling.", "positive"),
    ("Clumsy, loud and utterly pointless.", "negative"),
    ("I loved every minute of it.", "positive"),
    ("I hated every minute of it.", "negative"),
]


def plugin_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def require_plugin(distribution: str, folder: str) -> None:
    """Skip (with the install command) when the plugin is not pip-installed in this environment."""
    if plugin_version(distribution) is None:
        pytest.skip(f"{distribution} is not installed in this environment: pip install -e plugins/{folder} "
                    f"(scripts/setup.sh installs every plugins/tlhub-*)")


@pytest.fixture(scope="module")
def st_plugin(offline_assets):
    require_plugin("tlhub-sentence-transformers", "tlhub-sentence-transformers")
    return offline_assets["minilm"]


@pytest.fixture(scope="module")
def audio_plugin():
    require_plugin("tlhub-audio", "tlhub-audio")
    from tlhub_audio.adapter import AudioAdapter

    problems = AudioAdapter().diagnose()
    if problems:
        pytest.skip(f"audio decoding does not work here: {problems[0][0]}; fix: {problems[0][1]}")


@pytest.fixture(scope="session")
def spoken_words(tmp_path_factory) -> Path:
    """yes/no/up/down spoken by 6 espeak-ng voices x 2 speeds x 2 pitches (96 real WAV clips)."""
    from tlhub_audio.speech import espeak_binary, make_spoken_words

    if espeak_binary() is None:
        pytest.skip("espeak-ng is not installed: apt-get install -y espeak-ng (scripts/setup.sh does it)")
    folder = tmp_path_factory.mktemp("spoken-words")
    make_spoken_words(folder, words=WORDS)
    return folder


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory) -> dict[str, Path]:
    """Small RANDOMLY initialised wav2vec2 and HuBERT encoders (no pretrained audio weights offline)."""
    from tlhub_audio.tiny import save_random_encoder

    base = tmp_path_factory.mktemp("audio-encoders")
    return {arch: save_random_encoder(base / arch, arch=arch) for arch in ("wav2vec2", "hubert")}


def _clips(folder: Path, voice: str = "en-us-130-35") -> list[Path]:
    return [folder / word / f"{voice}.wav" for word in WORDS]


def _run_tlhub(*args: str, pythonpath: str | None = None, check: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, "-m", "tlhub", *args], env=env, capture_output=True, text=True, check=check, timeout=300)


def _pip_target(target: Path, *packages: Path) -> str:
    """A real ``pip install`` of ``packages`` into ``target`` (no deps: they are all here already)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
         "--target", str(target), *map(str, packages)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return str(target)


# ============================================================================================
# discovery


def test_both_plugins_are_discovered_through_their_entry_points():
    require_plugin("tlhub-sentence-transformers", "tlhub-sentence-transformers")
    require_plugin("tlhub-audio", "tlhub-audio")
    from tlhub.adapters.registry import KNOWN_PLUGINS

    out = _run_tlhub("plugins", "list", "--json", check=True)
    rows = {(r["name"], r["distribution"]): r for r in json.loads(out.stdout)}
    st = rows[("sentence-transformers", "tlhub-sentence-transformers")]
    audio = rows[("audio", "tlhub-audio")]
    assert (st["status"], st["modality"], st["version"]) == ("ok", "text", plugin_version("tlhub-sentence-transformers"))
    assert (audio["status"], audio["modality"], audio["version"]) == ("ok", "audio", plugin_version("tlhub-audio"))
    assert st["entry_point"] == "tlhub_sentence_transformers.adapter:SentenceTransformersAdapter"
    # the names tlhub suggests for `pip install` are the real package names
    assert KNOWN_PLUGINS == {
        "sentence-transformers": "tlhub-sentence-transformers",
        "audio": "tlhub-audio",
        "torchvision": "tlhub-torchvision",
    }
    table = _run_tlhub("plugins", "list", check=True).stdout
    for word in ("sentence-transformers", "tlhub-sentence-transformers", "audio", "tlhub-audio"):
        assert word in table


def test_saved_model_marker_names_a_missing_or_broken_adapter(tmp_path):
    """A saved model says which adapter reloads it; a missing one is named, never silently replaced."""
    from tlhub.adapters.registry import adapter_for_config
    from tlhub.errors import AdapterNotFoundError

    with pytest.raises(AdapterNotFoundError, match="no adapter named 'not-a-plugin'"):
        adapter_for_config({"model_type": "bert", "tlhub_adapter": "not-a-plugin"}, where="x")
    # a marker naming an adapter that does not claim the config falls back to the normal rules
    assert adapter_for_config({"model_type": "bert", "tlhub_adapter": "timm"}, where="x").name == "transformers"


# ============================================================================================
# sentence-transformers


def test_sentence_transformers_features_are_the_models_own_embeddings(st_plugin):
    import torch

    import tlhub
    from tlhub.adapters.registry import get_adapter

    texts = [t for t, _ in SENTENCES[:6]]
    model = tlhub.create_model(f"sentence-transformers:{MINILM}").eval()
    assert model.adapter_name == "sentence-transformers" and model.num_features == 384
    assert model.pipeline_description() == "Transformer -> Pooling(mean) -> Normalize"
    batch = get_adapter("sentence-transformers").make_collate(model)(texts)
    with torch.no_grad():
        features = model.forward_features(batch)
    assert torch.allclose(features.norm(dim=1), torch.ones(len(texts)), atol=1e-5)

    # what the built-in adapter feeds its classifier instead: BERT's (untrained) tanh pooler
    builtin = tlhub.create_model(MINILM, labels=["a", "b"]).eval()
    assert builtin.adapter_name == "transformers"  # built-ins are preferred: the prefix selects the plugin
    with torch.no_grad():
        pooler = builtin.forward_features(get_adapter("transformers").make_collate(builtin)(texts))
    assert torch.nn.functional.cosine_similarity(features, pooler).abs().max() < 0.9

    st = pytest.importorskip("sentence_transformers", reason="pip install sentence-transformers to compare with the library")
    reference = st.SentenceTransformer(MINILM, device="cpu").encode(texts, convert_to_tensor=True)
    assert torch.allclose(features, reference.cpu(), atol=1e-5)


def test_sentence_transformers_adapter_conforms(st_plugin, tmp_path):
    from tlhub.plugins.kit import CHECKS, check_adapter

    report = check_adapter("sentence-transformers", MINILM, [t for t, _ in SENTENCES[:4]], ["negative", "positive"], tmp_dir=tmp_path)
    assert report.ok and len(report.results) == len(CHECKS)


def test_sentence_transformers_saved_folder_is_a_sentence_transformers_model(st_plugin, tmp_path):
    import torch

    import tlhub
    from tlhub.adapters.registry import get_adapter

    adapter = get_adapter("sentence-transformers")
    model = tlhub.create_model(f"sentence-transformers:{MINILM}", labels=["negative", "positive"]).eval()
    with torch.no_grad():
        model.head.weight.normal_(0, 1)  # a head that is not the initial one
    files = adapter.save_native(model, str(tmp_path / "saved"))
    assert {"modules.json", "1_Pooling/config.json", "3_Dense/config.json", "3_Dense/model.safetensors", "config.json"} <= set(files)
    modules = json.loads((tmp_path / "saved" / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Normalize", "Dense"]
    assert modules[-1]["name"] == "classifier"
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["tlhub_adapter"] == "sentence-transformers" and config["id2label"] == {"0": "negative", "1": "positive"}

    texts = [t for t, _ in SENTENCES[:5]]
    with torch.no_grad():
        logits = model(adapter.make_collate(model)(texts))
    reloaded = tlhub.create_model(str(tmp_path / "saved"))
    assert reloaded.adapter_name == "sentence-transformers" and reloaded.labels == ["negative", "positive"]

    st = pytest.importorskip("sentence_transformers", reason="pip install sentence-transformers to load the folder natively")
    native = st.SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    assert torch.allclose(native.encode(texts, convert_to_tensor=True).cpu(), logits, atol=1e-5)


# ============================================================================================
# audio


def test_audio_inputs_decode_from_every_form(audio_plugin, spoken_words, tmp_path):
    import datasets
    import numpy as np

    from tlhub.adapters.registry import get_adapter
    from tlhub.errors import DataError
    from tlhub_audio.audio_io import wav_bytes

    adapter = get_adapter("audio")
    path = _clips(spoken_words)[3]  # "yes", espeak-ng writes 22.05 kHz mono
    clip = adapter.decode_input(str(path))
    assert clip["sampling_rate"] == 22050 and clip["array"].dtype == np.float32 and 0.2 < len(clip["array"]) / 22050 < 2
    same = [
        adapter.decode_input(path.read_bytes()),
        adapter.decode_input({"bytes": None, "path": str(path)}),  # datasets Audio(decode=False)
        adapter.decode_input({"array": clip["array"], "sampling_rate": 22050}),
    ]
    for other in same:
        assert other["sampling_rate"] == 22050 and np.allclose(other["array"], clip["array"], atol=1e-4)

    # datasets 5 decodes an Audio column with torchcodec (AudioDecoder objects), resampled on request
    ds = datasets.Dataset.from_dict({"audio": [str(path)]}).cast_column("audio", datasets.Audio(sampling_rate=16000))
    decoded = adapter.decode_input(ds[0]["audio"])
    assert decoded["sampling_rate"] == 16000 and abs(len(decoded["array"]) - len(clip["array"]) * 16000 / 22050) < 50

    # Gradio's gr.Audio(type="numpy"): (rate, int16 samples), here stereo
    stereo = (np.stack([clip["array"], clip["array"]], axis=1) * 32767).astype(np.int16)
    from_gradio = adapter.decode_input((22050, stereo))
    assert np.allclose(from_gradio["array"], clip["array"], atol=1e-3)

    # the collate resamples to the model's rate and pads a batch
    from tlhub_audio.model import AudioTransferModel  # noqa: F401  (torch side)
    from tlhub_audio.tiny import save_random_encoder

    import tlhub

    model = tlhub.create_model(f"audio:{save_random_encoder(tmp_path / 'enc')}", labels=WORDS)
    batch = adapter.make_collate(model)([clip, {"array": np.zeros(8000, np.float32), "sampling_rate": 8000}])
    assert abs(batch["input_values"].shape[1] - len(clip["array"]) * 16000 / 22050) <= 1
    assert batch["attention_mask"][1].sum() == 16000

    with pytest.raises(DataError, match="not found"):
        adapter.decode_input(str(tmp_path / "missing.wav"))
    with pytest.raises(DataError, match="not audio FFmpeg can decode"):
        adapter.decode_input(b"this is not audio at all" * 10)
    assert adapter.decode_input(wav_bytes(np.zeros(100, np.float32), 16000))["sampling_rate"] == 16000


@pytest.mark.parametrize("arch", ["wav2vec2", "hubert"])
def test_audio_adapter_conforms(audio_plugin, spoken_words, tiny_encoders, tmp_path, arch):
    from tlhub.plugins.kit import check_adapter

    report = check_adapter("audio", str(tiny_encoders[arch]), [str(p) for p in _clips(spoken_words)], WORDS, tmp_dir=tmp_path)
    assert report.ok


def test_audio_features_give_the_transformers_models_logits(audio_plugin, spoken_words, tiny_encoders, tmp_path):
    """Pooling first, then projector + classifier as the head == transformers' own forward (padding included)."""
    import torch

    import tlhub
    from tlhub.adapters.registry import get_adapter

    adapter = get_adapter("audio")
    model = tlhub.create_model(f"audio:{tiny_encoders['wav2vec2']}", labels=WORDS).eval()
    assert model.pool_first and model.num_features == model.hf_model.config.hidden_size
    assert set(model.head_parameter_names()) == {f"hf_model.{m}.{p}" for m in ("projector", "classifier") for p in ("weight", "bias")}
    clips = [adapter.decode_input(str(p)) for p in _clips(spoken_words, "en-gb-130-65") + _clips(spoken_words, "en-us_f3-175-35")]
    batch = adapter.make_collate(model)(clips)
    assert batch["attention_mask"].min() == 0  # clips of different lengths: padded
    with torch.no_grad():
        ours = model(batch)
        theirs = model.hf_model(**batch).logits
    assert torch.allclose(ours, theirs, atol=1e-5)

    # the saved folder is a plain transformers audio classifier
    adapter.save_native(model, str(tmp_path / "saved"))
    from transformers import pipeline

    from tlhub_audio.audio_io import resample

    classify = pipeline("audio-classification", model=str(tmp_path / "saved"), top_k=4)
    # transformers' pipeline needs torchaudio to resample: hand it 16 kHz audio
    scores = classify({"raw": resample(clips[0]["array"], clips[0]["sampling_rate"], 16000), "sampling_rate": 16000})
    assert {s["label"] for s in scores} == set(WORDS)
    assert scores[0]["label"] == predict(model, [clips[0]], top_k=1)[0][0].label


# ============================================================================================
# the whole pipeline: train -> evaluate -> save -> push -> Space


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_space(space: Path, hub, tmp_path: Path, call):
    """Start the Space's app.py like the Spaces runtime (model from the local Hub), then ``call(client)``."""
    import httpx

    from tlhub.publishing.spaces import serve_space

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE")}
    env.update(HF_ENDPOINT=hub.endpoint, HF_HOME=str(tmp_path / "app-home"), HF_HUB_DISABLE_XET="1",
               HTTP_PROXY=DEAD_PROXY, HTTPS_PROXY=DEAD_PROXY, http_proxy=DEAD_PROXY, https_proxy=DEAD_PROXY,
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    log = tmp_path / "app.log"
    with open(log, "wb") as sink:
        proc = serve_space(space, port=port, wait=False, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        with httpx.Client(trust_env=False) as client:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if client.get(url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            else:
                raise AssertionError(f"the Space app did not start (exit {proc.poll()}):\n{log.read_text(errors='replace')[-4000:]}")
        from gradio_client import Client

        return call(Client(url, verbose=False))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _sentences_csv(folder: Path) -> Path:
    import csv

    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", SENTENCES[:16]), ("test", SENTENCES[16:])):
        with open(folder / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    return folder


@pytest.fixture(scope="module")
def st_trained(st_plugin, tmp_path_factory):
    """Trained offline before the test switches to the local Hub (the backbone is in the offline cache)."""
    import tlhub

    base = tmp_path_factory.mktemp("st-run")
    data = _sentences_csv(base / "sentences")
    return tlhub.train(backbone=f"sentence-transformers:{MINILM}", data=str(data), strategy="lp-ft", probe_epochs=20,
                       epochs=1, batch_size=8, output_dir=str(base / "run"), cache_dir=str(base / "cache"))


@pytest.fixture(scope="module")
def audio_trained(audio_plugin, spoken_words, tiny_encoders, tmp_path_factory):
    import tlhub

    base = tmp_path_factory.mktemp("audio-run")
    return tlhub.train(backbone=f"audio:{tiny_encoders['wav2vec2']}", data=str(spoken_words), strategy="lp-ft",
                       probe_epochs=10, epochs=1, batch_size=16, output_dir=str(base / "run"),
                       cache_dir=str(base / "cache"), validation_fraction=0.25, test_split=None)


@pytest.mark.slow
def test_sentence_transformers_plugin_end_to_end(st_trained, local_hub, tmp_path):
    import torch
    from huggingface_hub import HfApi, snapshot_download

    import tlhub
    from tlhub.publishing.push import push_model
    from tlhub.publishing.spaces import build_space

    result = st_trained
    model_dir = result.model_dir
    record = json.loads((model_dir / "tlhub.json").read_text())
    assert record["adapter"] == "sentence-transformers" and record["library_name"] == "sentence-transformers"
    assert (model_dir / "modules.json").is_file() and (model_dir / "eval_results.json").is_file()
    assert result.eval.split == "test" and 0.0 <= result.metrics["accuracy"] <= 1.0

    # evaluate the saved model again, through tlhub's normal loading (the marker picks the plugin)
    model = tlhub.create_model(str(model_dir))
    assert model.adapter_name == "sentence-transformers" and model.labels == ["negative", "positive"]
    texts = [t for t, _ in SENTENCES[16:]]
    predictions = predict(str(model_dir), texts, top_k=1)
    truth = [label for _, label in SENTENCES[16:]]
    accuracy = sum(p[0].label == t for p, t in zip(predictions, truth)) / len(truth)
    assert accuracy == pytest.approx(result.metrics["accuracy"])

    repo_id = f"{local_hub.user}/minilm-st-sentiment"
    push_model(model_dir, repo_id, space=True)
    api = HfApi()
    files = set(api.list_repo_files(repo_id))
    assert {"modules.json", "1_Pooling/config.json", "3_Dense/model.safetensors", "tlhub.json", "README.md"} <= files
    card = Path(api.hf_hub_download(repo_id, "README.md")).read_text()
    assert "library_name: sentence-transformers" in card

    # anyone can load it: tlhub by name (online, local Hub), sentence-transformers natively
    again = tlhub.create_model(repo_id)
    assert again.adapter_name == "sentence-transformers"
    local = Path(snapshot_download(repo_id))
    st = pytest.importorskip("sentence_transformers")
    with torch.no_grad():
        expected = model.eval()(tlhub.get_adapter("sentence-transformers").make_collate(model)(texts))
    native = st.SentenceTransformer(str(local), device="cpu").encode(texts, convert_to_tensor=True).cpu()
    assert torch.allclose(native, expected, atol=1e-5)

    # the Space: the plugin's own template (sentence-transformers, no tlhub), run and queried
    space = tmp_path / "space"
    snapshot_download(f"{repo_id}-demo", repo_type="space", local_dir=space)
    app = (space / "app.py").read_text()
    assert "from sentence_transformers import SentenceTransformer" in app and "import tlhub" not in app
    assert "sentence-transformers" in (space / "requirements.txt").read_text()
    answer = _run_space(space, local_hub, tmp_path, lambda client: client.predict(texts[0], api_name="/classify"))
    assert answer["label"] == predictions[0][0].label
    assert answer["confidences"][0]["confidence"] == pytest.approx(predictions[0][0].score, abs=1e-4)
    assert build_space(str(model_dir), tmp_path / "local-space").template.name == "space_template"


@pytest.mark.slow
def test_audio_plugin_end_to_end(audio_trained, spoken_words, local_hub, tmp_path):
    from huggingface_hub import HfApi, snapshot_download

    import tlhub
    from tlhub.publishing.push import push_model

    result = audio_trained
    model_dir = result.model_dir
    record = json.loads((model_dir / "tlhub.json").read_text())
    assert record["adapter"] == "audio" and record["modality"] == "audio" and record["labels"] == WORDS
    assert record["preprocessing"]["sampling_rate"] == 16000
    assert 0.0 <= result.metrics["accuracy"] <= 1.0  # random encoder: the pipeline runs, accuracy means little

    model = tlhub.create_model(str(model_dir))
    assert model.adapter_name == "audio"
    clip = _clips(spoken_words, "en-gb-scotland-175-65")[3]
    top = predict(str(model_dir), [str(clip)], top_k=4)[0]
    assert [p.label for p in top] and {p.label for p in top} == set(WORDS)

    repo_id = f"{local_hub.user}/tiny-w2v-words"
    push_model(model_dir, repo_id, space=True)
    api = HfApi()
    files = set(api.list_repo_files(repo_id))
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "tlhub.json", "README.md"} <= files
    again = tlhub.create_model(repo_id)  # online against the local Hub: the marker picks the audio adapter
    assert again.adapter_name == "audio" and again.labels == WORDS

    # natively: transformers' audio-classification pipeline on the downloaded repo
    from transformers import pipeline

    local = Path(snapshot_download(repo_id))
    from tlhub_audio.audio_io import resample

    decoded = tlhub.get_adapter("audio").decode_input(str(clip))
    audio16k = resample(decoded["array"], decoded["sampling_rate"], 16000)  # the pipeline resamples only with torchaudio
    native = pipeline("audio-classification", model=str(local), top_k=4)({"raw": audio16k, "sampling_rate": 16000})
    assert native[0]["label"] == top[0].label

    # the Space: gr.Audio, transformers + torchcodec, FFmpeg from packages.txt; run and queried with a WAV file
    space = tmp_path / "space"
    snapshot_download(f"{repo_id}-demo", repo_type="space", local_dir=space)
    app_source = (space / "app.py").read_text()
    assert "INPUT_COMPONENT = 'Audio'" in app_source and "from torchcodec.decoders import AudioDecoder" in app_source
    assert (space / "packages.txt").read_text().split() == ["ffmpeg"]
    assert "torchcodec" in (space / "requirements.txt").read_text()

    from gradio_client import handle_file

    answer = _run_space(space, local_hub, tmp_path, lambda client: client.predict(handle_file(str(clip)), api_name="/classify"))
    assert answer["label"] == top[0].label
    assert answer["confidences"][0]["confidence"] == pytest.approx(top[0].score, abs=1e-3)


# ============================================================================================
# broken plugins: real installs into --target folders, discovery in a subprocess


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory) -> str:
    """plugins/broken-example and plugins/broken-example/hijack, pip-installed into one --target folder."""
    target = tmp_path_factory.mktemp("broken-site")
    return _pip_target(target, PLUGINS / "broken-example", PLUGINS / "broken-example" / "hijack")


def test_broken_plugins_are_listed_with_their_reason_and_others_keep_working(broken_site):
    rows = {(r["name"], r["distribution"]): r for r in json.loads(_run_tlhub("plugins", "list", "--json", pythonpath=broken_site, check=True).stdout)}
    missing = rows[("broken-import", "tlhub-broken-example")]
    assert missing["status"] == "broken"
    assert "No module named 'tlhub_broken_example_missing_dependency'" in missing["error"]
    assert "tlhub_broken_example.needs_missing_dep" in missing["error"]
    assert "pip install" in missing["fix"] and "tlhub-broken-example" in missing["fix"]
    contract = rows[("broken-contract", "tlhub-broken-example")]
    assert contract["status"] == "broken" and "does not implement: load, preprocessing, save_native" in contract["error"]
    # the hijack attempt is refused; the built-ins (and installed plugins) keep working
    hijack = rows[("timm", "tlhub-hijack-example")]
    assert hijack["status"] == "conflict" and "built-in adapters cannot be replaced" in hijack["fix"]
    assert rows[("timm", "tlhub")]["status"] == "ok" and rows[("transformers", "tlhub")]["status"] == "ok"
    for name, dist in (("sentence-transformers", "tlhub-sentence-transformers"), ("audio", "tlhub-audio")):
        if plugin_version(dist):
            assert rows[(name, dist)]["status"] == "ok"

    table = _run_tlhub("plugins", "list", pythonpath=broken_site, check=True).stdout
    assert "broken-import" in table and "tlhub_broken_example_missing_dependency" in table
    assert "tlhub plugins doctor" in table


def test_doctor_explains_each_broken_plugin_with_its_fix(broken_site):
    out = _run_tlhub("plugins", "doctor", pythonpath=broken_site)
    assert out.returncode == 1
    text = out.stdout
    assert "!! broken-import (tlhub-broken-example 0.0.1" in text
    assert "problem: ModuleNotFoundError: No module named 'tlhub_broken_example_missing_dependency'" in text
    assert "!! broken-contract" in text and "implement those methods" in text
    assert "!! timm (tlhub-hijack-example 0.0.1" in text and "cannot be replaced" in text
    assert "ok timm (tlhub " in text
    assert "3 broken" in text
    # the timm adapter in that environment is still tlhub's own
    code = "import tlhub; a = tlhub.get_adapter('timm'); print(type(a).__module__)"
    env = {**os.environ, "PYTHONPATH": broken_site}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip() == "tlhub.adapters.timm.adapter"


def _throwaway(tmp_path: Path, name: str, source: str, entry_points: dict[str, str]) -> Path:
    pkg = tmp_path / name
    module = name.replace("-", "_")
    (pkg / module).mkdir(parents=True)
    (pkg / module / "__init__.py").write_text(textwrap.dedent(source))
    eps = "\n".join(f'"{k}" = "{v}"' for k, v in entry_points.items())
    (pkg / "pyproject.toml").write_text(
        f'[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{name}"\nversion = "1.0"\n[project.entry-points."tlhub.adapters"]\n{eps}\n'
    )
    return pkg


VALID_ADAPTER = """
from tlhub.adapters.contract import Adapter, Preprocessing

class Dup(Adapter):
    name = "dup"
    modality = "text"
    pipeline_tag = "text-classification"
    library_name = "dup"
    def claims(self, config): return False
    def load(self, source, **kw): raise NotImplementedError
    def preprocessing(self, model): return Preprocessing(modality="text")
    def make_collate(self, model, **kw): raise NotImplementedError
    def save_native(self, model, directory): raise NotImplementedError
"""


def test_two_plugins_claiming_one_name_are_both_refused(tmp_path):
    site = _pip_target(tmp_path / "site", _throwaway(tmp_path, "tlhub-dup-one", VALID_ADAPTER, {"dup": "tlhub_dup_one:Dup"}),
                       _throwaway(tmp_path, "tlhub-dup-two", VALID_ADAPTER, {"dup": "tlhub_dup_two:Dup"}),
                       _throwaway(tmp_path, "tlhub-stale", "", {"stale": "tlhub_stale_renamed.adapter:Gone"}))
    rows = {(r["name"], r["distribution"]): r for r in json.loads(_run_tlhub("plugins", "list", "--json", pythonpath=site, check=True).stdout)}
    for dist in ("tlhub-dup-one", "tlhub-dup-two"):
        row = rows[("dup", dist)]
        assert row["status"] == "conflict"
        assert "claimed by several packages: tlhub-dup-one, tlhub-dup-two" in row["error"]
        assert "pip uninstall tlhub-dup-one or tlhub-dup-two" in row["fix"]
    stale = rows[("stale", "tlhub-stale")]
    assert stale["status"] == "broken" and "points to module 'tlhub_stale_renamed.adapter', which is not installed" in stale["error"]
    assert "pip install --force-reinstall tlhub-stale" in stale["fix"]
    # an adapter nobody can use is not picked by name either
    code = "import tlhub\ntry:\n    tlhub.get_adapter('dup')\nexcept Exception as e:\n    print(type(e).__name__, e)"
    env = {**os.environ, "PYTHONPATH": site}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.startswith("PluginError") and "conflict" in out


def test_installed_broken_example_is_reported_in_process():
    """When the lead's setup pip-installs plugins/broken-example into the test environment."""
    if plugin_version("tlhub-broken-example") is None:
        pytest.skip("tlhub-broken-example is not installed here (pip install -e plugins/broken-example); "
                    "the --target tests above cover it regardless")
    import tlhub
    from tlhub.adapters.registry import discover
    from tlhub.errors import PluginError

    infos = {(i.name, i.distribution): i for i in discover(refresh=True)}
    assert infos[("broken-import", "tlhub-broken-example")].status == "broken"
    assert infos[("broken-contract", "tlhub-broken-example")].status == "broken"
    with pytest.raises(PluginError, match="tlhub_broken_example_missing_dependency"):
        tlhub.get_adapter("broken-import")
    assert tlhub.get_adapter("timm").name == "timm"


# ============================================================================================
# scaffolding


@pytest.mark.slow
@pytest.mark.parametrize("modality", ["image", "text", "audio"])
def test_scaffolded_plugin_installs_and_passes_the_kit(tmp_path, modality):
    name = f"scaffold-{modality}"
    out = _run_tlhub("plugins", "new", name, "--modality", modality, "--dir", str(tmp_path), check=True)
    package = tmp_path / f"tlhub-{name}"
    assert f"pip install -e {package}" in out.stdout
    assert {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()} >= {
        "pyproject.toml", "README.md", ".gitignore", f"src/tlhub_scaffold_{modality}/adapter.py",
        f"src/tlhub_scaffold_{modality}/backbone.py", f"src/tlhub_scaffold_{modality}/native.py", "tests/test_conformance.py",
    }
    site = _pip_target(tmp_path / "site", package)
    rows = {r["name"]: r for r in json.loads(_run_tlhub("plugins", "list", "--json", pythonpath=site, check=True).stdout)}
    assert rows[name]["status"] == "ok" and rows[name]["modality"] == modality
    env = {**os.environ, "PYTHONPATH": site}
    test = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s", str(package / "tests")],
                          cwd=package, env=env, capture_output=True, text=True, timeout=600)
    assert test.returncode == 0, test.stdout[-4000:] + test.stderr[-2000:]
    # the kit's own summary line: every check ran and passed, or was skipped as not applicable
    from tlhub.plugins.kit import CHECKS

    kit_line = re.search(r"conformance: .*?: (\d+) passed(?:, (\d+) skipped)?", test.stdout)
    assert kit_line, test.stdout[-4000:]
    assert int(kit_line.group(1)) + int(kit_line.group(2) or 0) == len(CHECKS) and "failed" not in kit_line.group(0)
    assert "1 passed" in test.stdout


def test_scaffold_refuses_bad_names_and_existing_folders(tmp_path):
    from tlhub.errors import ConfigError
    from tlhub.plugins.scaffold import create_plugin, plugin_names

    assert plugin_names("my-audio") == {"name": "my-audio", "distribution": "tlhub-my-audio", "package": "tlhub_my_audio", "class_name": "MyAudio"}
    for bad in ("My_Adapter", "1abc", "a--b", ""):
        with pytest.raises(ConfigError, match="not a valid adapter name"):
            create_plugin(bad, modality="text", parent=tmp_path)
    for builtin in ("timm", "transformers"):
        with pytest.raises(ConfigError, match="built-in"):
            create_plugin(builtin, modality="image", parent=tmp_path)
    with pytest.raises(ConfigError, match="unknown modality"):
        create_plugin("x", modality="video", parent=tmp_path)
    create_plugin("twice", modality="text", parent=tmp_path)
    with pytest.raises(ConfigError, match="not empty"):
        create_plugin("twice", modality="text", parent=tmp_path)
    result = _run_tlhub("plugins", "new", "Bad_Name", "--modality", "text", "--dir", str(tmp_path))
    assert result.returncode == 2 and "not a valid adapter name" in result.stderr and "fix:" in result.stderr
