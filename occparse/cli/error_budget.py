"""``occparse error-budget``: the geometric error with the parser's labels vs the true labels.

Thin over :mod:`occparse.evaluation.error_budget`, whose ``add_arguments`` and ``run`` sit beside the code they drive (its
module docstring is this command's description); see :class:`occparse.cli.common.ToolCommand`."""

from __future__ import annotations

from .common import ToolCommand

_COMMAND = ToolCommand("error-budget", "occparse.evaluation.error_budget", "the geometric error with the parser's labels vs the true labels")
add_parser, add_arguments, run = _COMMAND.add_parser, _COMMAND.add_arguments, _COMMAND.run
