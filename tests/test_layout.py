"""The package's layout: runtime modules stay small enough to read (DESIGN: one job per module)."""

from __future__ import annotations

from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[1] / "occparse" / "runtime"


def test_runtime_modules_stay_under_500_lines():
    long = {p.name: n for p in RUNTIME.glob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert not long, f"split these modules: {long}"
