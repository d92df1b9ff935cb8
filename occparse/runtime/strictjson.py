"""Strict JSON for everything occparse writes: a number that is not finite becomes ``null``.

Python's ``json`` writes ``NaN`` and ``Infinity``, which are not JSON (RFC 8259) and break
``jq``, JavaScript and most other readers. A region outside the frame, a group with no
samples or a correlation of a constant have no value: that is ``null``.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite_or_none(obj: Any) -> Any:
    """A copy of ``obj`` (dicts, lists, tuples, numbers, numpy scalars and arrays) with every
    non-finite float (NaN, +-inf) replaced by ``None``; numpy values become plain Python ones."""
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):  # arrays and scalars; numpy is not imported here
        return finite_or_none(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj: Any, **kw: Any) -> str:
    """``json.dumps`` that always yields valid JSON: non-finite numbers are written as ``null``.

    Raises ``TypeError`` for objects JSON cannot hold (as ``json.dumps`` does), never writes ``NaN``.
    """
    return json.dumps(finite_or_none(obj), allow_nan=False, **kw)
