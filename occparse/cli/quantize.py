"""``occparse quantize``: int8 copies of the shipped networks for the CPU (a build step).

Thin over :mod:`occparse.models.quantize`, whose ``add_arguments`` and ``run`` sit beside the code they drive (its
module docstring is this command's description); see :class:`occparse.cli.common.ToolCommand`."""

from __future__ import annotations

from .common import ToolCommand

_COMMAND = ToolCommand("quantize", "occparse.models.quantize", "int8 copies of the shipped networks for the CPU (a build step)")
add_parser, add_arguments, run = _COMMAND.add_parser, _COMMAND.add_arguments, _COMMAND.run
