"""The one deep-merge of config mappings (simulator domain inheritance, adaptation overrides, bench profiles)."""
from __future__ import annotations

import copy
from typing import Iterable, Optional


def deep_merge(base: Optional[dict], over: Optional[dict], *, replace_keys: Iterable[str] = ()) -> dict:
    """``over`` on top of ``base``, recursively for nested mappings; a new dict (inputs untouched).

    Keys in ``replace_keys`` take ``over``'s value whole instead of merging into ``base``'s (e.g. a bench
    profile's ``model:`` section is a complete model, not a patch)."""
    out = copy.deepcopy(base or {})
    replace = set(replace_keys)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in replace:
            out[k] = deep_merge(out[k], v, replace_keys=replace)
        else:
            out[k] = copy.deepcopy(v)
    return out
