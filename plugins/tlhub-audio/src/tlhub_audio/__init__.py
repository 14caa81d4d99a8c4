"""tlhub plugin: audio classification with transformers audio encoders.

Select it with the ``audio:`` prefix (a raw wav2vec2/HuBERT checkpoint is also a valid
transformers config, and tlhub prefers its built-in adapter when guessing)::

    tlhub train --backbone audio:./my-wav2vec2 --data ./spoken-words

Importing this package is cheap (no torch): tlhub imports the adapter at discovery time.
"""

__version__ = "0.1.0"
