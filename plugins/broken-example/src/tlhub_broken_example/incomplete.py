"""Entry point ``broken-contract``: an Adapter subclass that implements only ``claims``."""

from tlhub.adapters.contract import Adapter


class IncompleteAdapter(Adapter):
    name = "broken-contract"
    modality = "text"
    pipeline_tag = "text-classification"
    library_name = "broken"

    def claims(self, config):
        return True  # claims everything: must still never hijack anybody's repos
