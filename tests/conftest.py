"""Shared fixtures: the research data folder (skip when absent), a private mesh cache, one FaceMesher."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from occparse.synth.sources import DataNotFoundError, find_data_root

# MediaPipe/TFLite start-up chatter would drown pytest's own output.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _locate_data() -> Path | None:
    try:
        return find_data_root()
    except DataNotFoundError:
        return None


DATA_ROOT = _locate_data()
SKIP_REASON = (
    "shared data folder not found (expected ../shared/data beside the checkout, or set OCCPARSE_DATA); "
    "it is research-licensed and never copied into the repository"
)

#: Marks tests that read ../shared/data without needing its path (the fixture below gives the path).
needs_data = pytest.mark.skipif(DATA_ROOT is None, reason=SKIP_REASON)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The data folder, or skip the test with the reason why it is missing."""
    if DATA_ROOT is None:
        pytest.skip(SKIP_REASON)
    return DATA_ROOT


@pytest.fixture(scope="session", autouse=True)
def _private_mesh_cache(tmp_path_factory: pytest.TempPathFactory):
    """Mesh caches go to a fresh folder, so tests never read (or spoil) a developer's ~/.cache/occparse."""
    old = os.environ.get("OCCPARSE_CACHE")
    os.environ["OCCPARSE_CACHE"] = str(tmp_path_factory.mktemp("occparse_cache"))
    yield
    if old is None:
        os.environ.pop("OCCPARSE_CACHE", None)
    else:
        os.environ["OCCPARSE_CACHE"] = old


@pytest.fixture(scope="session")
def mesher():
    """One MediaPipe Face Mesh graph for the whole session (start-up is the slow part)."""
    from occparse.runtime.faces import FaceMesher

    with FaceMesher(max_faces=4) as m:
        yield m
