"""The test split is for the final evaluation only.

Every choice the trainer makes (best epoch, early stopping, probe regularisation, layers, the
backbone under ``--backbone auto``) must come from training/validation data. The trainer reaches a
split's examples only through ``Loop.loader`` (batches) and ``Loop.features`` (cached features), so
these tests record every split those are asked for and fail if the test split is asked for before
``Loop.final_evaluation`` starts. (The data doctor's pre-flight leakage check hashes test inputs
to compare them with the training set; it chooses nothing, and does not go through these paths.)
"""

from __future__ import annotations

import pytest

import tlhub
from tlhub.engine import trainer
from tests.engine.test_trainer import TINY


@pytest.fixture
def split_log(monkeypatch):
    log: list[str] = []
    loader, features, final = trainer.Loop.loader, trainer.Loop.features, trainer.Loop.final_evaluation

    def logged_loader(self, split, *, train, **kwargs):
        log.append(split)
        return loader(self, split, train=train, **kwargs)

    def logged_features(self, split, *args, **kwargs):
        log.append(split)
        return features(self, split, *args, **kwargs)

    def logged_final(self, *args, **kwargs):
        log.append("<final evaluation>")
        return final(self, *args, **kwargs)

    monkeypatch.setattr(trainer.Loop, "loader", logged_loader)
    monkeypatch.setattr(trainer.Loop, "features", logged_features)
    monkeypatch.setattr(trainer.Loop, "final_evaluation", logged_final)
    return log


@pytest.mark.parametrize("strategy,layers", [("feature-extraction", {}), ("lp-ft", {}),
                                             # the layer evidence (scores, selection, unfreeze: auto) too
                                             ("lp-ft", {"feature_layers": "all", "unfreeze": "auto"}),
                                             # and stage 1: --backbone auto scores its candidates on train only
                                             ("feature-extraction", {"backbone": "auto"})])
def test_the_test_split_is_read_only_by_the_final_evaluation(strategy, layers, split_log, tmp_path, offline_assets):
    result = tlhub.train(**dict(TINY, early_stopping_patience=1, select_by="val_accuracy"), strategy=strategy, **layers,
                         output_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
    assert result.eval.split == "test"
    final = split_log.index("<final evaluation>")
    before, after = split_log[:final], split_log[final + 1 :]
    assert "train" in before and "validation" in before, split_log  # the choices were made on these
    assert "test" not in before, f"the test split was read before the final evaluation: {split_log}"
    assert "test" in after, split_log  # ... and it is what the final evaluation scored
