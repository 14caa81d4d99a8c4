"""The built-in ``transformers`` adapter (text backbones). ``model`` imports torch; ``adapter`` does not."""
