"""Every --help is plain text a terminal shows well, with the defaults of its options."""

from __future__ import annotations

import re

import pytest

from occparse.cli import build_parser

COMMANDS = ["estimate", "predict", "parse", "evaluate", "synth", "train", "fit-stacker", "models", "error-budget",
            "parser-eval", "quantize", "benchmark"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_plain_text_with_defaults(command, capsys):
    parser = build_parser(command)
    with pytest.raises(SystemExit):
        parser.parse_args([command, "--help"])
    text = capsys.readouterr().out
    assert not re.search(r"``|:(func|class|mod|data|meth|attr):`", text), text
    sub = next(a for a in parser._actions if hasattr(a, "choices") and a.choices and command in a.choices)
    cmd = sub.choices[command]
    fmt = cmd._get_formatter()
    for action in cmd._actions:
        if action.option_strings and action.default not in (None, False, "==SUPPRESS==") and action.help:
            assert "default" in fmt._get_help_string(action), (command, action.option_strings)

def test_parse_help_names_every_label_value(capsys):
    with pytest.raises(SystemExit):
        build_parser("parse").parse_args(["parse", "--help"])
    text = capsys.readouterr().out
    assert "4 facial hair" in text and "0..3" not in text
