"""``occparse models``: list, verify (sha256), locate or pin the models.

Thin over :mod:`occparse.models.zoo`, whose ``add_arguments`` and ``run`` sit beside the code they drive (its
module docstring is this command's description); see :class:`occparse.cli.common.ToolCommand`."""

from __future__ import annotations

from .common import ToolCommand

_COMMAND = ToolCommand("models", "occparse.models.zoo", "list, verify (sha256), locate or pin the models")
add_parser, add_arguments, run = _COMMAND.add_parser, _COMMAND.add_arguments, _COMMAND.run
