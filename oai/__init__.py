"""OAI-PMH 2.0 repository server: store, metadata formats, protocol and web layer."""

from __future__ import annotations

__version__ = "0.1.0"


def create_app(overrides=None):
    """Build the Flask app (imported lazily so that `import oai` stays light)."""
    from oai.web.app import create_app as _create_app

    return _create_app(overrides)
