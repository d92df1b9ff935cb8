"""The README is a user's manual that stays true: its commands parse, its links resolve, its Python
example runs, it stays short, and neither it nor docs/ tells the history of how occparse was built."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from occparse.cli import build_parser
from occparse.models.zoo import manifest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
CARDS = sorted((ROOT / "weights").glob("*.md"))  # the model cards
MAX_LINES = 400
VENV_LINE = "python3 -m venv .venv && . .venv/bin/activate"

# Documentation pages that arrive with their features (each is linked before it exists on every branch):
# the ISO/IEC 29794-5 style components, the `occparse report` HTML report, how the face region is built,
# and scoring with `evaluate --by` and the CelebA kinds benchmark.
COMING_WITH_THEIR_FEATURES: set[str] = set()  # pages a link may name before they exist (none now)

# History words: product text describes occparse as it is, never how or when the work was done.
HISTORY = re.compile(r"\b(sessions?|sittings?|helpers?|newcomer|stress test)\b", re.I)
# ...except an ONNX Runtime session, which is the library's own term.
ALLOWED = re.compile(r"ONNX Runtime sessions?|InferenceSession|make_session|session\.\w+", re.I)


def _blocks(text: str) -> list[tuple[str, str]]:
    """(info string, body) of each fenced code block, in order."""
    return re.findall(r"^```([^\n]*)\n(.*?)^```", text, re.S | re.M)


def _commands(body: str) -> list[str]:
    """The `occparse ...` lines of a code block: comments and shell continuations handled."""
    body = body.replace("\\\n", " ")
    out = []
    for line in body.splitlines():
        for part in re.split(r"&&|;|\|", line.split("  #")[0]):
            part = part.strip()
            if part.startswith("occparse "):
                out.append(part)
    return out


def test_readme_is_short_and_starts_with_a_venv_then_the_two_setup_lines():
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines (at most {MAX_LINES})"
    first_fence = next(i for i, line in enumerate(lines) if line.startswith("```"))
    venv_at = next((i for i, line in enumerate(lines) if VENV_LINE in line), None)
    assert venv_at is not None and venv_at < first_fence, "the venv line must come before the first code block"
    setup = _blocks(text)[0][1].splitlines()
    # .ci/run runs the second line verbatim; the first is the user's install-and-run line
    assert setup == ['pip install -e ".[cpu]" && occparse estimate examples/astronaut.png --visualize',
                     'pip install -e ".[cpu,train,dev]" && pytest -q'], setup
    # the licence of the shipped models is on the first screen
    assert re.search(r"research use only", "\n".join(lines[:40]), re.I)


def test_every_readme_command_parses():
    parser = build_parser()
    commands = [c for _, body in _blocks(README.read_text(encoding="utf-8")) for c in _commands(body)]
    assert len(commands) >= 10, commands
    for cmd in commands:
        argv = shlex.split(cmd)[1:]
        try:
            ns = parser.parse_args(argv)
        except SystemExit as e:  # argparse's way of refusing
            pytest.fail(f"README command does not parse ({e.code}): {cmd}")
        assert ns.command, cmd


def test_parse_check_catches_a_wrong_option():
    """The check above can fail: an unknown option is refused."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["estimate", "x.png", "--no-such-option"])


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown page (lower case, punctuation dropped, spaces -> '-')."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, re.M)}


def test_relative_links_point_to_files_and_headings():
    missing = []
    for page in [README, ROOT / "CHANGELOG.md", *DOCS]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
            if rel in COMING_WITH_THEIR_FEATURES:
                continue
            if not path.exists() or (anchor and path.suffix == ".md" and anchor not in _anchors(path)):
                missing.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not missing, missing


def test_no_history_of_work_in_readme_docs_or_model_cards():
    found = []
    for page in [README, ROOT / "CHANGELOG.md", *DOCS, *CARDS]:
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if m := HISTORY.search(ALLOWED.sub("", line)):
                found.append(f"{page.relative_to(ROOT)}:{n}: {m.group(0)!r}")
    assert not found, found


def test_history_check_catches_history():
    assert HISTORY.search(ALLOWED.sub("", "The eleventh session made it faster."))
    assert not HISTORY.search(ALLOWED.sub("", "ONNX Runtime sessions load once per process."))


@pytest.mark.skipif(not ("stacker" in manifest() and "parser" in manifest()), reason="no shipped models")
def test_readme_python_blocks_run():
    blocks = [body for info, body in _blocks(README.read_text(encoding="utf-8")) if info.strip() == "python"]
    assert blocks, "README.md has no python example"
    for code in blocks:
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        assert re.search(r"occluded \d+\.\d%", out.stdout), out.stdout
