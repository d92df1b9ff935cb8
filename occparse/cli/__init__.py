"""The ``occparse`` command: one parser, one module per subcommand, each thin over the package's API.

Every command module has ``add_parser(sub)`` (its help, description and examples), ``add_arguments(p)``
and ``run(args) -> exit status``; shared options and messages are in :mod:`occparse.cli.common`.
Building the parser imports no numpy, OpenCV, ONNX Runtime or torch: the commands import what they
need when they run, and the tools whose options live beside their code (benchmark, quantize,
parser-eval, error-budget, models) are only loaded when asked for.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from . import (
    benchmark,
    error_budget,
    estimate,
    evaluate,
    fit_stacker,
    models,
    parse,
    parser_eval,
    predict,
    quantize,
    report,
    synth,
    train,
)
from .common import EXIT_INTERRUPTED, PRECISION_CHOICES, fail, interrupted, plain_help, quiet_native_logs

__all__ = ["PRECISION_CHOICES", "build_parser", "main"]

EPILOG = """examples:
  occparse synth --preset bench --out bench/            # the fixed 3,000-sample benchmark split
  occparse synth --preset bench --out bench/ --preview sheet.png
  occparse synth --preset train --count 20000 --out synth_train/
  occparse evaluate --pred preds.csv --truth bench/truth.csv
  occparse report results.csv --out report.html --by gender --groups labels.csv   # one HTML page (see --help)
  occparse benchmark --images bench/images -n 200       # per-stage latency and images/s (see --help)
  occparse quantize parser --calib pools/lfw --out weights/parser.int8.onnx   # int8 CPU models (see --help)

Occlusion = 1 - |V ∩ R| / |R|: R is the MediaPipe face-oval polygon, V the visible face
(skin and features). See docs/method.md for the method and docs/data.md for the data contract.
"""


#: the commands, in the order ``occparse --help`` lists them
COMMANDS = (synth, evaluate, parse, estimate, predict, report, fit_stacker, train)
#: the tools, registered by name only unless asked for (their options import numpy and OpenCV)
TOOLS = {"benchmark": benchmark, "quantize": quantize, "parser-eval": parser_eval, "error-budget": error_budget,
         "models": models}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``occparse`` parser; with ``command``, the tools other than that one are registered by name only."""
    p = argparse.ArgumentParser(
        prog="occparse",
        description="Measure how much of a face is occluded (0..1), with a picture that shows why.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--verbose", action="store_true",
                   help="keep MediaPipe/TensorFlow Lite log lines on stderr (also: OCCPARSE_VERBOSE=1)")
    p.add_argument("--version", action="version", version=f"occparse {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMANDS:
        mod.add_parser(sub)
    for name, mod in TOOLS.items():
        mod.add_parser(sub, load=command in (None, name))
    plain_help(p)
    return p


def _version() -> str:
    from .. import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """The ``occparse`` command. Any :class:`occparse.errors.OccparseError` becomes one line on stderr, exit 2."""
    from ..errors import OccparseError

    own_process = argv is None  # the occparse command itself, not a caller's Python
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--verbose" in argv:  # accepted anywhere on the line; the environment carries it to worker processes
        argv = [x for x in argv if x != "--verbose"]
        os.environ["OCCPARSE_VERBOSE"] = "1"
    quiet_native_logs()
    # a file name that is not valid UTF-8 reaches Python as surrogate escapes: the text output writes
    # its original bytes back rather than failing (CSV, Parquet and JSON escape it, see rows.utf8_text)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")
    parser = build_parser(argv[0] if argv and not argv[0].startswith("-") else "")
    a = parser.parse_args(argv)
    if not getattr(a, "func", None):
        parser.print_help()
        return 2
    try:
        rc = int(a.func(a) or 0)
        sys.stdout.flush()  # inside the try: a reader that went away (`| head -1`) shows up here, not at exit
    except BrokenPipeError:
        return _stdout_gone()
    except OccparseError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        rc = interrupted()
    if rc == EXIT_INTERRUPTED and own_process:
        # the rows are safe and the message is out: a second Ctrl-C while the interpreter tears down (worker
        # pools, progress bars, native sessions) would only print a traceback from some object's finaliser
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return rc


#: exit status when the reader of stdout went away (128 + SIGPIPE, what a shell reports for `cmd | head -1`)
EXIT_BROKEN_PIPE = 141


def _stdout_gone() -> int:
    """The reader of stdout closed the pipe (``occparse estimate x.png | head -1``): stop quietly.

    Python's documented recipe: point stdout at /dev/null so the interpreter's final flush cannot
    raise a second BrokenPipeError (which would print "Exception ignored ...")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # no real stdout (captured): nothing more to protect
        pass
    return EXIT_BROKEN_PIPE
