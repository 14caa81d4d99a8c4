"""Accuracy: the fraction of predictions that equal their reference (tlhub's bundled copy).

Loaded with ``evaluate.load(<path of this file>)`` so that it works without the Hugging Face Hub.
"""

import datasets
import evaluate
from sklearn.metrics import accuracy_score

_DESCRIPTION = """
Accuracy is the fraction of predictions that match their reference label:
(number of correct predictions) / (number of predictions).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class ids.
    references (`list` of `int`): true class ids.
    normalize (`bool`, defaults to `True`): return the fraction of correct predictions; if `False`,
        the number of correct predictions.
    sample_weight (`list` of `float`, *optional*): a weight per sample.

Returns:
    accuracy (`float` or `int`): between 0 and 1 when normalized, else a count.

Examples:
    >>> accuracy = evaluate.load("tlhub/metrics/accuracy")
    >>> accuracy.compute(predictions=[0, 1, 2, 1], references=[0, 1, 1, 1])
    {'accuracy': 0.75}
"""

_CITATION = """
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and others},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.accuracy_score.html"],
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        value = accuracy_score(references, predictions, normalize=normalize, sample_weight=sample_weight)
        return {"accuracy": float(value) if normalize or sample_weight is not None else int(value)}
