"""Storage: tables, engine, migrations and keyword-only storage functions, one module per concern.

The storage functions are reachable here too (`storage.add_user(...)`), loaded on first use so
that importing `annotate.storage.models` does not pull in every storage module.
"""

from __future__ import annotations

import importlib
from typing import Any

_FUNCTIONS = {
    "CampaignStatus": "annotate.storage.campaigns",
    "ImportResult": "annotate.storage.items",
    "LabelImportResult": "annotate.storage.annotations",
    "add_release": "annotate.storage.releases",
    "add_user": "annotate.storage.users",
    "campaign_members": "annotate.storage.campaigns",
    "campaign_schema": "annotate.storage.schemas",
    "campaign_status": "annotate.storage.campaigns",
    "can_label": "annotate.storage.campaigns",
    "create_campaign": "annotate.storage.campaigns",
    "dumps": "annotate.storage.releases",
    "get_campaign": "annotate.storage.campaigns",
    "get_own_annotation": "annotate.storage.annotations",
    "get_user": "annotate.storage.users",
    "import_items": "annotate.storage.items",
    "import_labels": "annotate.storage.annotations",
    "list_campaigns": "annotate.storage.campaigns",
    "list_own_annotations": "annotate.storage.annotations",
    "list_release_rows": "annotate.storage.releases",
    "list_users": "annotate.storage.users",
    "metadata_keys": "annotate.storage.visibility",
    "own_history": "annotate.storage.annotations",
    "register_schema": "annotate.storage.schemas",
    "save_annotation": "annotate.storage.annotations",
    "set_active": "annotate.storage.users",
    "set_members": "annotate.storage.campaigns",
    "set_password": "annotate.storage.users",
    "set_visible_metadata": "annotate.storage.visibility",
    "set_role": "annotate.storage.users",
    "update_campaign": "annotate.storage.campaigns",
}

__all__ = sorted(_FUNCTIONS)


def __getattr__(name: str) -> Any:
    """Load the storage module that defines `name` and return it from there."""
    module = _FUNCTIONS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
