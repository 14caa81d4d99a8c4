"""The built-in ``timm`` adapter (image backbones). ``model`` imports torch; ``adapter`` does not."""
