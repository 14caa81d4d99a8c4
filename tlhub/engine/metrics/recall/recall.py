"""Recall: per-class or averaged recall for classification (tlhub's bundled copy).

Loaded with ``evaluate.load(<path of this file>)`` so that it works without the Hugging Face Hub.
"""

import datasets
import evaluate
from sklearn.metrics import recall_score

_DESCRIPTION = """
Recall is the fraction of the samples of a class that are predicted as that class:
TP / (TP + FN), computed per class and then averaged.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class ids.
    references (`list` of `int`): true class ids.
    labels (`list` of `int`, *optional*): the class ids to report, in this order. Defaults to the
        classes present in `references` or `predictions`; pass every class id to get a value (0 with
        zero support) for classes absent from the data.
    pos_label (`int`, defaults to 1): the positive class when `average="binary"`.
    average (`str` or `None`, defaults to `"macro"`): `"macro"` (unweighted mean over classes),
        `"micro"`, `"weighted"` (mean weighted by support), `"binary"`, or `None` for one value per class.
    sample_weight (`list` of `float`, *optional*): a weight per sample.
    zero_division (`0`, `1`, `"warn"` or `nan`, defaults to `0`): the value used where the ratio is
        0/0 (a class never predicted, or never present).

Returns:
    recall (`float`, or `list` of `float` when `average=None`): between 0 and 1.

Examples:
    >>> recall = evaluate.load("tlhub/metrics/recall")
    >>> recall.compute(predictions=[0, 1, 2, 1], references=[0, 1, 1, 2], average=None)
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
class Recall(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.recall_score.html"],
        )

    def _compute(self, predictions, references, labels=None, pos_label=1, average="macro", sample_weight=None, zero_division=0):
        value = recall_score(
            references,
            predictions,
            labels=labels,
            pos_label=pos_label,
            average=average,
            sample_weight=sample_weight,
            zero_division=zero_division,
        )
        if average is None:
            return {"recall": [float(v) for v in value]}
        return {"recall": float(value)}
