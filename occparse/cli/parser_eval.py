"""``occparse parser-eval``: the parser's IoU on LFW val and a benchmark split. Thin over :mod:`occparse.evaluation.parser_eval`, whose ``add_arguments`` and ``run``
sit beside the code they drive (its module docstring is this command's description)."""

from __future__ import annotations

import argparse

HELP = "the parser's IoU on LFW val and a benchmark split"


def add_parser(sub, load: bool = True) -> argparse.ArgumentParser:
    """Register ``occparse parser-eval`` on the subcommands ``sub``. Building its options imports
    :mod:`occparse.evaluation.parser_eval` (numpy, OpenCV): with ``load=False`` (another command was asked for) only the
    name and help line are registered, so ``occparse --help`` and the other commands stay fast."""
    if not load:
        return sub.add_parser("parser-eval", help=HELP)
    from ..evaluation import parser_eval as impl

    p = sub.add_parser("parser-eval", help=HELP, description=impl.__doc__, epilog=getattr(impl, "EPILOG", None),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``occparse parser-eval``'s options (defined in :mod:`occparse.evaluation.parser_eval`)."""
    from ..evaluation.parser_eval import add_arguments as impl_add_arguments

    impl_add_arguments(p)


def run(a: argparse.Namespace) -> int:
    from ..evaluation.parser_eval import run as impl_run

    return impl_run(a)
