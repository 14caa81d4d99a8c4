"""tlhub-torchvision: the tlhub adapter plugin 'torchvision' (torchvision image classifiers)."""
__version__ = "0.1.0"
