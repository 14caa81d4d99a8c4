"""tlhub plugin: sentence-transformers models as text backbones, with their own pooling.

Select it with the ``sentence-transformers:`` prefix::

    tlhub train --backbone sentence-transformers:sentence-transformers/all-MiniLM-L6-v2 --data ...

Importing this package is cheap (no torch): tlhub imports the adapter at discovery time.
"""

__version__ = "0.1.0"
