"""The orchestrator's core: backbone names to sources (``names``), ``create_model`` (``factory``),
top-k prediction (``prediction``) and the saved-model folder (``saving``).

It sits above the adapters and drives them; it knows no backbone library itself.
"""
