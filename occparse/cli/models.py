"""``occparse models``: list, verify (sha256), locate or pin the models. Thin over :mod:`occparse.models.zoo`, whose ``add_arguments`` and ``run``
sit beside the code they drive (its module docstring is this command's description)."""

from __future__ import annotations

import argparse

HELP = "list, verify (sha256), locate or pin the models"


def add_parser(sub, load: bool = True) -> argparse.ArgumentParser:
    """Register ``occparse models`` on the subcommands ``sub``. Building its options imports
    :mod:`occparse.models.zoo` (numpy, OpenCV): with ``load=False`` (another command was asked for) only the
    name and help line are registered, so ``occparse --help`` and the other commands stay fast."""
    if not load:
        return sub.add_parser("models", help=HELP)
    from ..models import zoo as impl

    p = sub.add_parser("models", help=HELP, description=impl.__doc__, epilog=getattr(impl, "EPILOG", None),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``occparse models``'s options (defined in :mod:`occparse.models.zoo`)."""
    from ..models.zoo import add_arguments as impl_add_arguments

    impl_add_arguments(p)


def run(a: argparse.Namespace) -> int:
    from ..models.zoo import run as impl_run

    return impl_run(a)
