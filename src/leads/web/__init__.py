"""The reviewers' web workspace: ``leads serve``.

A FastAPI application with server-rendered Jinja pages and htmx (vendored, no build step):
accounts and per-project roles, project setup (question, versioned criteria, imports by drag
and drop, duplicate review), screening one record at a time in the AI / active-learning order
with per-criterion AI verdicts and highlighted evidence, dual (blinded) screening with conflicts
and Cohen's kappa, extraction beside the full text, local-corpus searches, and outputs (PRISMA
2020 diagram, exports, audit trail). See ``docs/workspace.md``.

Needs the ``web`` extra (``pip install 'leads[web]'``).
"""

import importlib
from typing import Any

# Loaded on first use: `leads` imports this package for its `serve` command, and FastAPI is an
# optional extra that must not be needed (or paid for) by the other commands.
_LAZY = {"ROLES": "leads.web.store", "WorkspaceStore": "leads.web.store", "create_app": "leads.web.app"}

__all__ = ["ROLES", "WorkspaceStore", "create_app"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'leads.web' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
