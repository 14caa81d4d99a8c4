"""Runs through tlhub itself: used for models that the backbone's own library cannot load alone
(a head over several layers) and for plugin adapters without a Space template of their own."""

import tlhub


def load_classifier(source: str, local: bool):
    """A function from one input (an image, a text, a file path) to ``{label: probability}``."""
    predictor = tlhub.Predictor.from_pretrained(source)
    every = len(predictor.model.labels)

    def probabilities(value):
        return {p.label: p.score for p in predictor([value], top_k=every)[0]}

    return probabilities
