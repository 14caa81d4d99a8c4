"""Confusion matrix for classification (tlhub's bundled copy).

Loaded with ``evaluate.load(<path of this file>)`` so that it works without the Hugging Face Hub.
"""

import datasets
import evaluate
from sklearn.metrics import confusion_matrix

_DESCRIPTION = """
The confusion matrix counts, for every pair of classes (i, j), the samples whose true class is i
and whose predicted class is j. Rows are true classes, columns are predicted classes, so the
diagonal holds the correct predictions.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class ids.
    references (`list` of `int`): true class ids.
    labels (`list` of `int`, *optional*): the class ids indexing the rows and columns, in this order.
        Defaults to the sorted classes present in `references` or `predictions`; pass every class id
        to get a row and a column (of zeros) for classes absent from the data.
    sample_weight (`list` of `float`, *optional*): a weight per sample.
    normalize (`"true"`, `"pred"`, `"all"` or `None`, defaults to `None`): divide by the row sums
        (`"true"`), the column sums (`"pred"`) or the total; `None` keeps counts.

Returns:
    confusion_matrix (`list` of `list`): `len(labels) x len(labels)`, rows = true, columns = predicted;
        `int` counts unless normalized or weighted.

Examples:
    >>> cm = evaluate.load("tlhub/metrics/confusion_matrix")
    >>> cm.compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'confusion_matrix': [[1, 1], [0, 1]]}
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
class ConfusionMatrix(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.confusion_matrix.html"],
        )

    def _compute(self, predictions, references, labels=None, sample_weight=None, normalize=None):
        matrix = confusion_matrix(references, predictions, labels=labels, sample_weight=sample_weight, normalize=normalize)
        if normalize is None and sample_weight is None:
            return {"confusion_matrix": [[int(v) for v in row] for row in matrix]}
        return {"confusion_matrix": [[float(v) for v in row] for row in matrix]}
