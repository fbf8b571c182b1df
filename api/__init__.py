"""Interlude: HTTP composition root, settings and CLI."""
