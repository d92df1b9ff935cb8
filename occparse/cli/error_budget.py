"""``occparse error-budget``: the geometric error with the parser's labels vs the true labels. Thin over :mod:`occparse.evaluation.error_budget`, whose ``add_arguments`` and ``run``
sit beside the code they drive (its module docstring is this command's description)."""

from __future__ import annotations

import argparse

HELP = "the geometric error with the parser's labels vs the true labels"


def add_parser(sub, load: bool = True) -> argparse.ArgumentParser:
    """Register ``occparse error-budget`` on the subcommands ``sub``. Building its options imports
    :mod:`occparse.evaluation.error_budget` (numpy, OpenCV): with ``load=False`` (another command was asked for) only the
    name and help line are registered, so ``occparse --help`` and the other commands stay fast."""
    if not load:
        return sub.add_parser("error-budget", help=HELP)
    from ..evaluation import error_budget as impl

    p = sub.add_parser("error-budget", help=HELP, description=impl.__doc__, epilog=getattr(impl, "EPILOG", None),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``occparse error-budget``'s options (defined in :mod:`occparse.evaluation.error_budget`)."""
    from ..evaluation.error_budget import add_arguments as impl_add_arguments

    impl_add_arguments(p)


def run(a: argparse.Namespace) -> int:
    from ..evaluation.error_budget import run as impl_run

    return impl_run(a)
