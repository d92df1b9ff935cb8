"""``occparse parser-eval``: the parser's IoU on LFW val and a benchmark split.

Thin over :mod:`occparse.evaluation.parser_eval`, whose ``add_arguments`` and ``run`` sit beside the code they drive (its
module docstring is this command's description); see :class:`occparse.cli.common.ToolCommand`."""

from __future__ import annotations

from .common import ToolCommand

_COMMAND = ToolCommand("parser-eval", "occparse.evaluation.parser_eval", "the parser's IoU on LFW val and a benchmark split")
add_parser, add_arguments, run = _COMMAND.add_parser, _COMMAND.add_arguments, _COMMAND.run
