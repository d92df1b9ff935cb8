"""``occparse benchmark``: per-stage latency and end-to-end images/s, with the machine's facts.

Thin over :mod:`occparse.evaluation.benchmark`, whose ``add_arguments`` and ``run`` sit beside the code they drive (its
module docstring is this command's description); see :class:`occparse.cli.common.ToolCommand`."""

from __future__ import annotations

from .common import ToolCommand

_COMMAND = ToolCommand("benchmark", "occparse.evaluation.benchmark", "per-stage latency and end-to-end images/s, with the machine's facts")
add_parser, add_arguments, run = _COMMAND.add_parser, _COMMAND.add_arguments, _COMMAND.run
