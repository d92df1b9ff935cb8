"""``occparse benchmark``: per-stage latency and end-to-end images/s, with the machine's facts. Thin over :mod:`occparse.evaluation.benchmark`, whose ``add_arguments`` and ``run``
sit beside the code they drive (its module docstring is this command's description)."""

from __future__ import annotations

import argparse

HELP = "per-stage latency and end-to-end images/s, with the machine's facts"


def add_parser(sub, load: bool = True) -> argparse.ArgumentParser:
    """Register ``occparse benchmark`` on the subcommands ``sub``. Building its options imports
    :mod:`occparse.evaluation.benchmark` (numpy, OpenCV): with ``load=False`` (another command was asked for) only the
    name and help line are registered, so ``occparse --help`` and the other commands stay fast."""
    if not load:
        return sub.add_parser("benchmark", help=HELP)
    from ..evaluation import benchmark as impl

    p = sub.add_parser("benchmark", help=HELP, description=impl.__doc__, epilog=getattr(impl, "EPILOG", None),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``occparse benchmark``'s options (defined in :mod:`occparse.evaluation.benchmark`)."""
    from ..evaluation.benchmark import add_arguments as impl_add_arguments

    impl_add_arguments(p)


def run(a: argparse.Namespace) -> int:
    from ..evaluation.benchmark import run as impl_run

    return impl_run(a)
