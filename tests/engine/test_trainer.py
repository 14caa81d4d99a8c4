"""The engine end to end on real data (Fashion-MNIST) and a real pretrained backbone, kept tiny."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import tlhub
from tlhub.errors import CheckpointError

# 80 training images at 32 px: seconds per epoch on two CPU cores
TINY = dict(
    data="fashion-mnist",
    max_train_per_class=8,
    max_eval_samples=40,
    image_size=32,
    crop_pct=1.0,
    batch_size=16,
    eval_batch_size=40,
    probe_epochs=3,
    epochs=1,
    augment=False,
    early_stopping_patience=None,
)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("features"))


def _args(cfg: dict) -> list[str]:
    out = []
    for key, value in cfg.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + key.replace("_", "-"))
        elif value is None:
            out += [flag, "none"]
        else:
            out += [flag, str(value)]
    return out


@pytest.mark.parametrize("strategy", ["feature-extraction", "fine-tune", "lp-ft", "gradual-unfreeze"])
def test_each_strategy_trains_and_saves(strategy, tmp_path, offline_assets, cache_dir):
    extra = {
        "gradual-unfreeze": {"unfreeze": "2", "epochs": 2},
        "fine-tune": {"epochs": 2, "warmup_epochs": 0.0},  # no probe: the new head starts at zero
    }.get(strategy, {})
    result = tlhub.train(**dict(TINY, **extra), strategy=strategy, output_dir=str(tmp_path / strategy), cache_dir=cache_dir)
    stages = [row["stage"] for row in result.history]
    expected = {  # the default probe (probe_solver logistic) is one solve: one row of history
        "feature-extraction": ["linear-probe"],
        "fine-tune": ["fine-tune"] * 2,
        "lp-ft": ["linear-probe", "fine-tune"],
        "gradual-unfreeze": ["linear-probe", "unfreeze-1", "unfreeze-2"],
    }[strategy]
    assert stages == expected
    if strategy == "fine-tune":
        assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    else:  # a probe on pretrained features beats chance (0.1) on the real test split with 80 images
        assert result.metrics["accuracy"] > 0.3, result.metrics
    model_dir = result.model_dir
    for name in ("config.json", "model.safetensors", "tlhub.json", "eval_results.json", "training_log.json",
                 "images/confusion_matrix.png", "images/training_curves.png"):
        assert (model_dir / name).is_file(), name
    record = json.loads((model_dir / "tlhub.json").read_text())
    assert record["strategy"] == strategy and record["labels"][0] == "T-shirt/top"
    # the installed distribution's version, without a local build tag such as "+cu130"
    assert record["versions"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert result.example and len(result.example["predictions"]) == 3


def test_fine_tuning_keeps_batchnorm_statistics_by_default(tmp_path, offline_assets, cache_dir):
    # norm_eval (the default): the running statistics stay the pretrained ones while every weight
    # fine-tunes; --no-norm-eval lets the batches update them
    from tlhub.core.factory import create_model

    pretrained = create_model(offline_assets["lite0"], labels=[str(i) for i in range(10)]).state_dict()
    stats = [k for k in pretrained if k.endswith("running_mean") or k.endswith("running_var")]
    assert len(stats) > 20
    saved = {}
    for frozen in (True, False):
        over = {} if frozen else {"norm_eval": False}
        result = tlhub.train(**TINY, **over, strategy="lp-ft", select_by="last", output_dir=str(tmp_path / str(frozen)), cache_dir=cache_dir)
        assert json.loads((result.model_dir / "tlhub.json").read_text())["config"]["norm_eval"] is frozen
        saved[frozen] = load_file(result.model_dir / "model.safetensors")
    kept, updated = saved[True], saved[False]
    native = {k: k.removeprefix("model.") for k in pretrained}  # the saved file is timm's own state dict
    assert all(torch.equal(kept[native[k]], pretrained[k]) for k in stats)
    assert not all(torch.equal(updated[native[k]], pretrained[k]) for k in stats)
    assert not torch.equal(kept["conv_stem.weight"], pretrained["model.conv_stem.weight"])  # the weights did fine-tune


def test_feature_cache_is_reused(tmp_path, offline_assets, cache_dir):
    cfg = dict(TINY, strategy="feature-extraction", cache_dir=cache_dir)
    first = tlhub.train(**cfg, output_dir=str(tmp_path / "a"))
    second = tlhub.train(**cfg, output_dir=str(tmp_path / "b"))
    assert second.feature_cache and all(second.feature_cache.values()), second.feature_cache
    assert second.metrics == first.metrics
    # a different preprocessing is a different key
    third = tlhub.train(**dict(cfg, image_size=40), output_dir=str(tmp_path / "c"))
    assert third.feature_cache["train"] is False


def test_saved_model_loads_natively_and_in_tlhub(tmp_path, offline_assets, cache_dir, coffee_png):
    import timm

    result = tlhub.train(**TINY, strategy="lp-ft", output_dir=str(tmp_path / "run"), cache_dir=cache_dir)
    native = timm.create_model(f"local-dir:{result.model_dir}", pretrained=True).eval()
    assert native.pretrained_cfg["label_names"][9] == "Ankle boot"
    assert native.pretrained_cfg["input_size"] == (3, 32, 32)
    model = tlhub.create_model(str(result.model_dir)).eval()
    assert model.labels == native.pretrained_cfg["label_names"]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model({"pixel_values": x}), native(x))
    [preds] = tlhub.predict(model, [str(coffee_png)], top_k=3)
    assert len(preds) == 3 and all(p.label in model.labels for p in preds)


def test_resume_after_kill_gives_the_same_result(tmp_path, offline_assets, cache_dir):
    # with the weight average and random erasing on: their state (EMA weights, RNG) must resume too.
    # BatchNorm statistics updated (norm_eval off): with frozen ImageNet statistics this 32 px
    # fine-tune at lr 1e-3 diverges in its first epoch (train loss ~19), and the resumed run then
    # ended elsewhere than the reference (test accuracy 0.675 against 0.425). A diverging run
    # amplifies any difference; which one (the killed first epoch runs in a subprocess) is not
    # pinned down yet
    cfg = dict(TINY, strategy="lp-ft", probe_epochs=4, epochs=2, ema_decay=0.9, random_erasing=0.5, norm_eval=False, cache_dir=cache_dir)
    reference = tlhub.train(**cfg, output_dir=str(tmp_path / "reference"))

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "tlhub", "train", *_args(cfg), "--output-dir", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    latest = out / "checkpoints" / "latest"
    # kill inside the fine-tune stage, after its first epoch's checkpoint (the probe's length in
    # epochs depends on its solver: one closed-form solve, or probe_epochs epochs)
    first_fine_tune = next(r["epoch"] for r in reference.history if r["stage"] == "fine-tune")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if latest.is_symlink() and os.readlink(latest) >= f"epoch-{first_fine_tune:04d}":
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # no clean-up, as a power cut would do it
    proc.wait()
    assert not (out / "model").exists()

    resumed = tlhub.train(**cfg, output_dir=str(out))
    assert [r["epoch"] for r in resumed.history] == [r["epoch"] for r in reference.history]
    assert resumed.metrics == pytest.approx(reference.metrics)
    a, b = load_file(reference.model_dir / "model.safetensors"), load_file(resumed.model_dir / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def _started_training(proc: subprocess.Popen):
    """An event set when the run in ``proc`` (stdout piped) says its strategy, just before the first
    epoch: start-up (imports, data, backbone) is over. Its output is read, and dropped, meanwhile."""
    import threading

    event = threading.Event()

    def read():
        for line in proc.stdout:
            if line.startswith("strategy"):
                event.set()

    threading.Thread(target=read, daemon=True).start()
    return event


def test_resume_after_kill_at_a_random_point_gives_the_same_result(tmp_path, offline_assets, cache_dir):
    """kill -9 at a moment drawn at random (a seeded RNG; TLHUB_KILL_SEED replays a seed) between
    the first epoch's start and the run's end: in an epoch, a checkpoint write, the evaluation or
    the final save. Resuming gives the uninterrupted run's weights exactly, wherever it fell."""
    import random

    seed = int(os.environ.get("TLHUB_KILL_SEED") or random.SystemRandom().randrange(2**32))
    cfg = dict(TINY, strategy="fine-tune", epochs=6, warmup_epochs=0.0, max_train_per_class=4, max_eval_samples=20,
               ema_decay=0.9, random_erasing=0.5, cache_dir=cache_dir)

    def run(out):
        cmd = [sys.executable, "-m", "tlhub", "train", *_args(cfg), "--output-dir", str(out)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        started = _started_training(proc)
        assert started.wait(300), "the run never started training"
        return proc, time.monotonic()

    # the uninterrupted run, timed from its first epoch to its end: the range of the kill point
    proc, began = run(tmp_path / "reference")
    assert proc.wait(300) == 0
    length = time.monotonic() - began
    delay = random.Random(seed).uniform(0.0, length)

    out = tmp_path / "killed"
    proc, _ = run(out)
    time.sleep(delay)
    finished = proc.poll() is not None
    if not finished:
        os.killpg(proc.pid, signal.SIGKILL)  # no clean-up, as a power cut would do it
    proc.wait()
    latest = out / "checkpoints" / "latest"
    where = (f"seed {seed} (TLHUB_KILL_SEED={seed} replays it): killed {delay:.2f} s after the first epoch began, of "
             f"{length:.2f} s to the end; latest checkpoint then {os.readlink(latest) if latest.is_symlink() else 'none'}"
             + ("; the run had already finished" if finished else ""))
    print(where)

    resumed = tlhub.train(**cfg, output_dir=str(out))
    reference = load_file(tmp_path / "reference" / "model" / "model.safetensors")
    weights = load_file(resumed.model_dir / "model.safetensors")
    assert weights.keys() == reference.keys(), where
    for key in reference:
        assert torch.equal(weights[key], reference[key]), f"{key} differs; {where}"
    metrics = [json.loads((folder / "metrics.json").read_text())["metrics"] for folder in (tmp_path / "reference", out)]
    assert metrics[0] == metrics[1], where
    assert not (out / ".tlhub-next").exists(), where


def test_weight_average_is_what_is_validated_and_saved(tmp_path, offline_assets, cache_dir):
    # select_by "last": the last epoch is kept, so the saved model must be its average, not its last step
    cfg = dict(TINY, strategy="fine-tune", epochs=2, warmup_epochs=0.0, ema_decay=0.5, select_by="last", cache_dir=cache_dir)
    result = tlhub.train(**cfg, output_dir=str(tmp_path / "run"))
    assert json.loads((result.model_dir / "tlhub.json").read_text())["best_epoch"] == 2
    latest = tmp_path / "run" / "checkpoints" / "latest"
    raw, ema = load_file(latest / "model.safetensors"), load_file(latest / "ema.safetensors")
    saved = load_file(result.model_dir / "model.safetensors")
    floats = [k for k in saved if saved[k].is_floating_point()]
    assert any(not torch.equal(raw["model." + k], ema["model." + k]) for k in floats)  # a real average
    for key in floats:
        torch.testing.assert_close(saved[key], ema["model." + key])


def test_gradient_norms_are_logged_and_clip_grad_clips(tmp_path, offline_assets, cache_dir):
    # every fine-tuning epoch logs its largest gradient norm; clip_grad scales larger ones down
    cfg = dict(TINY, strategy="fine-tune", epochs=2, warmup_epochs=0.0, select_by="last", cache_dir=cache_dir)
    free = tlhub.train(**cfg, output_dir=str(tmp_path / "free"))
    norms = [row["grad_norm_max"] for row in free.history]
    assert all(0 < row["grad_norm_median"] <= row["grad_norm_max"] for row in free.history)
    assert all("clipped_fraction" not in row for row in free.history)
    limit = min(norms) / 10  # below every step's norm: each step is clipped
    clipped = tlhub.train(**cfg, clip_grad=limit, output_dir=str(tmp_path / "clipped"))
    assert [row["clipped_fraction"] for row in clipped.history] == [1.0, 1.0]
    # the first step saw the same gradient (same seed, data and weights) before it was clipped
    assert clipped.history[0]["grad_norm_max"] >= limit
    a, b = load_file(free.model_dir / "model.safetensors"), load_file(clipped.model_dir / "model.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    assert json.loads((clipped.model_dir / "tlhub.json").read_text())["config"]["clip_grad"] == limit
    from tlhub.publishing.card import build_model_card

    assert "| gradient clipping (max norm) |" in str(build_model_card(clipped.model_dir, "alice/clipped"))
    assert "gradient clipping" not in str(build_model_card(free.model_dir, "alice/free"))


def test_probe_on_cached_features_keeps_its_best_epoch(tmp_path, offline_assets, cache_dir):
    # the cached stage is checkpointed once, at its end; its best head is kept in memory meanwhile
    result = tlhub.train(**dict(TINY, probe_epochs=8, probe_lr=0.05, probe_solver="adamw"), strategy="feature-extraction",
                         output_dir=str(tmp_path / "run"), cache_dir=cache_dir)
    best = min(result.history, key=lambda r: r["val_loss"])["epoch"]
    record = json.loads((result.model_dir / "tlhub.json").read_text())
    assert record["best_epoch"] == best
    assert os.readlink(tmp_path / "run" / "checkpoints" / "latest") == "epoch-0008"
    saved, kept = load_file(result.model_dir / "model.safetensors"), load_file(tmp_path / "run" / "checkpoints" / "best.safetensors")
    for key in saved:
        torch.testing.assert_close(saved[key], kept["model." + key])
    assert result.metrics["accuracy"] > 0.3  # and it is a working probe (chance is 0.1)


def test_resume_refuses_a_different_config(tmp_path, offline_assets, cache_dir):
    out = str(tmp_path / "run")
    tlhub.train(**dict(TINY, strategy="feature-extraction"), output_dir=out, cache_dir=cache_dir)
    with pytest.raises(CheckpointError, match="probe_lr"):
        tlhub.train(**dict(TINY, strategy="feature-extraction", probe_lr=0.1), output_dir=out, cache_dir=cache_dir)


def test_two_processes_match_one(tmp_path, offline_assets, cache_dir):
    # BatchNorm statistics frozen and dropout off: then the split global batch gives the same
    # gradients up to float rounding in the all-reduce.
    cfg = dict(TINY, strategy="fine-tune", unfreeze="2", epochs=2, norm_eval=True, drop_rate=0.0, cache_dir=cache_dir)
    runs = {}
    for n in (1, 2):
        out = tmp_path / f"procs{n}"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", "-m", "tlhub",
               "train", *_args(cfg), "--output-dir", str(out)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        record = json.loads((out / "model" / "tlhub.json").read_text())
        assert record["num_processes"] == n
        runs[n] = (json.loads((out / "metrics.json").read_text()), load_file(out / "model" / "model.safetensors"))
    (m1, w1), (m2, w2) = runs[1], runs[2]
    assert m1["num_samples"] == m2["num_samples"] == 40  # no duplicated samples from uneven sharding
    assert m2["metrics"]["accuracy"] == pytest.approx(m1["metrics"]["accuracy"], abs=0.05)
    worst = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    assert worst < 1e-3, worst


def test_gradient_accumulation_matches_the_bigger_batch(tmp_path, offline_assets, cache_dir):
    # 64 images: two windows of 2 x 16 are exactly the two batches of 32 (same seeded order).
    # BatchNorm statistics frozen, dropout off, no augmentation: the gradient of a window is then
    # the gradient of the big batch, up to float rounding.
    cfg = dict(TINY, strategy="fine-tune", unfreeze="2", epochs=1, warmup_epochs=0.0, max_train_samples=64,
               norm_eval=True, drop_rate=0.0, select_by="last", cache_dir=cache_dir)
    runs = {}
    for name, batch, accumulate in (("big", 32, 1), ("accumulated", 16, 2), ("small", 16, 1)):
        result = tlhub.train(**dict(cfg, batch_size=batch, gradient_accumulation_steps=accumulate), output_dir=str(tmp_path / name))
        runs[name] = load_file(result.model_dir / "model.safetensors")
    big, accumulated, small = runs["big"], runs["accumulated"], runs["small"]
    floats = [k for k in big if big[k].is_floating_point()]
    for key in floats:
        torch.testing.assert_close(accumulated[key], big[key], rtol=1e-4, atol=1e-5, msg=key)
    # and the comparison can fail: four steps of 16 (what accumulation did before) end elsewhere
    worst_small = max((small[k] - big[k]).abs().max().item() for k in floats)
    worst_accumulated = max((accumulated[k] - big[k]).abs().max().item() for k in floats)
    assert worst_small > 100 * max(worst_accumulated, 1e-7), (worst_small, worst_accumulated)


def test_text_model_saves_for_transformers_pipeline(tmp_path, offline_assets, cache_dir):
    from transformers import pipeline

    result = tlhub.train(
        backbone=offline_assets["minilm"],
        data="vader-movies",
        max_train_samples=64,
        max_eval_samples=64,
        max_length=32,
        strategy="lp-ft",
        probe_epochs=2,
        epochs=1,
        batch_size=16,
        early_stopping_patience=None,
        output_dir=str(tmp_path / "text"),
        cache_dir=cache_dir,
    )
    classifier = pipeline("text-classification", model=str(result.model_dir), top_k=None)
    [scores] = classifier(["A gripping, beautifully acted film."])
    assert {s["label"] for s in scores} == {"negative", "positive"}
    [preds] = tlhub.predict(str(result.model_dir), ["A gripping, beautifully acted film."], top_k=2)
    assert {p.label for p in preds} == {"negative", "positive"}
    assert (result.model_dir / "examples" / "examples.json").is_file()


def _image_folder(root: Path, *, bad: bool) -> Path:
    """A tiny real image folder (Fashion-MNIST crops of two classes) with awkward files in it."""
    import numpy as np
    from PIL import Image

    from tlhub.data.loading import DataSpec, load_data

    data = load_data(DataSpec(source="fashion-mnist", max_train_per_class=12, test_split=None), progress=False)
    names = {1: "trouser", 7: "sneaker"}
    split = data.splits["train"]
    for i in range(len(split)):
        row = split[i]
        if row["label"] not in names:
            continue
        for part in ("train", "test"):
            folder = root / part / names[row["label"]]
            folder.mkdir(parents=True, exist_ok=True)
        part = "test" if i % 3 == 0 else "train"
        image = row["input"]
        if i % 4 == 1:
            image = image.convert("RGBA")  # greyscale and RGBA mixed in one folder
        image.save(root / part / names[row["label"]] / f"{i}.png")
    if bad:
        (root / "train" / "trouser" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
        cmyk = Image.fromarray(np.full((28, 28, 3), 200, np.uint8)).convert("CMYK")
        cmyk.save(root / "train" / "sneaker" / "cmyk.jpg")
    return root


def test_bad_images_are_skipped_and_reported(tmp_path, offline_assets, cache_dir):
    folder = _image_folder(tmp_path / "images", bad=True)
    cfg = dict(TINY, data=str(folder), max_train_per_class=None, max_eval_samples=None, strategy="feature-extraction",
               probe_epochs=2, cache_dir=cache_dir)
    result = tlhub.train(**cfg, output_dir=str(tmp_path / "run"))
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert "corrupt.png" in json.dumps(report)
    assert result.data_report == report
    assert result.eval.num_samples > 0

    # the strict policy stops before any training, naming the file, with one clear CLI message
    out = subprocess.run(
        [sys.executable, "-m", "tlhub", "train", *_args(dict(cfg, on_bad_input="error")), "--output-dir", str(tmp_path / "strict")],
        capture_output=True, text=True,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert "corrupt.png" in out.stderr and "fix:" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "strict" / "checkpoints").exists()


def test_missing_label_column_is_a_clear_error(tmp_path, offline_assets):
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,stars\nGreat film,5\nAwful,1\n")
    out = subprocess.run(
        [sys.executable, "-m", "tlhub", "train", "--backbone", offline_assets["minilm"], "--data", str(csv), "--label-column", "sentiment",
         "--output-dir", str(tmp_path / "run")],
        capture_output=True, text=True,
    )
    assert out.returncode == 2 and "sentiment" in out.stderr and "fix:" in out.stderr and "Traceback" not in out.stderr


def test_evaluate_command_on_a_saved_model(tmp_path, offline_assets, cache_dir):
    result = tlhub.train(**dict(TINY, strategy="feature-extraction"), output_dir=str(tmp_path / "run"), cache_dir=cache_dir)
    out = subprocess.run(
        [sys.executable, "-m", "tlhub", "evaluate", str(result.model_dir), "--max-samples", "40", "--json", "--output", str(tmp_path / "eval")],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout[out.stdout.index("{"):])
    assert data["num_samples"] == 40 and 0 <= data["metrics"]["accuracy"] <= 1
    assert (tmp_path / "eval" / "eval_results.json").is_file()
