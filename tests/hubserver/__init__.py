"""A real local Hugging Face Hub (olah + a write-side proxy) for tests, on 127.0.0.1 only.

See README.md; the pytest fixtures are in ``tests.hubserver.fixture``.
"""
