"""A deliberately broken tlhub plugin (see README.md)."""
