"""Runs with transformers only (no tlhub): a `text-classification` pipeline over the fine-tuned
model, which returns every label's score."""

from transformers import pipeline


def load_classifier(source: str, local: bool):
    """A function from one text to ``{label: probability}`` over every class."""
    classifier = pipeline("text-classification", model=source, top_k=None)

    def probabilities(text):
        scores = classifier(text, truncation=True)
        scores = scores[0] if scores and isinstance(scores[0], list) else scores
        return {d["label"]: float(d["score"]) for d in scores}

    return probabilities
