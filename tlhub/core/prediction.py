"""Top-k predictions with confidences, for any model tlhub can load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from tlhub.adapters.model import TransferModel


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float

    def __str__(self) -> str:
        return f"{self.label}: {self.score:.3f}"


class Predictor:
    """A loaded model with its adapter's preprocessing, ready for repeated top-k calls."""

    def __init__(self, model: "TransferModel", *, device: str | None = None):
        import torch

        from tlhub.adapters.registry import get_adapter

        self.model = model.eval()
        self.adapter = get_adapter(model.adapter_name)
        self.collate = self.adapter.make_collate(model, train=False)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)

    @classmethod
    def from_pretrained(cls, name: str, *, revision: str | None = None, device: str | None = None) -> "Predictor":
        from tlhub.core.factory import create_model

        return cls(create_model(name, revision=revision), device=device)

    def __call__(self, inputs: Sequence[Any], *, top_k: int = 5, batch_size: int = 32) -> list[list[Prediction]]:
        import torch

        if not self.model.labels:
            from tlhub.errors import TlhubError

            raise TlhubError(
                f"{self.model.source} has no classification head, so it cannot predict labels",
                fix="fine-tune it first with `tlhub train`, then predict with the saved model",
            )
        top_k = max(1, min(top_k, len(self.model.labels)))
        results: list[list[Prediction]] = []
        with torch.inference_mode():
            for start in range(0, len(inputs), batch_size):
                raw = [self.adapter.decode_input(x) for x in inputs[start : start + batch_size]]
                batch = {k: v.to(self.device) for k, v in self.collate(raw).items()}
                probs = self.model(batch).float().softmax(-1)
                scores, indices = probs.topk(top_k, dim=-1)
                for row_scores, row_indices in zip(scores.tolist(), indices.tolist()):
                    results.append([Prediction(self.model.labels[i], s) for s, i in zip(row_scores, row_indices)])
        return results


def predict(model_or_name, inputs, *, top_k: int = 5, revision: str | None = None) -> list[list[Prediction]]:
    """Top-k predictions for each input (file paths, PIL images, strings...).

    ``predict("tlhub-offline/tf_efficientnet_lite0.in1k", ["coffee.png"], top_k=3)``
    """
    single = isinstance(inputs, (str, bytes)) or not isinstance(inputs, (list, tuple))
    items = [inputs] if single else list(inputs)
    if isinstance(model_or_name, Predictor):
        predictor = model_or_name
    elif isinstance(model_or_name, str):
        predictor = Predictor.from_pretrained(model_or_name, revision=revision)
    else:
        predictor = Predictor(model_or_name)
    return predictor(items, top_k=top_k)
