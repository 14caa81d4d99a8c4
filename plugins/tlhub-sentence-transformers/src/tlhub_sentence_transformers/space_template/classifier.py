"""Runs with sentence-transformers only (no tlhub): the saved model is a sentence-transformers
folder whose last module is the classifier, so ``encode`` returns the logits; the label names are
the ``id2label`` of its config.json."""

from sentence_transformers import SentenceTransformer
from transformers import AutoConfig


def load_classifier(source: str, local: bool):
    """A function from one text to ``{label: probability}`` over every class."""
    model = SentenceTransformer(source, device="cpu")
    id2label = AutoConfig.from_pretrained(source).id2label
    labels = [id2label[i] for i in range(len(id2label))]

    def probabilities(text):
        probs = model.encode([text], convert_to_tensor=True).softmax(-1)[0]
        return dict(zip(labels, probs.tolist()))

    return probabilities
