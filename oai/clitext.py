"""A command-line word the store can keep: the type of every `oai` argument that is written or looked up.

The shell hands Python bytes that are not UTF-8 as lone surrogates (PEP 383) and passes control characters
through; the database driver and lxml then fail with a traceback, or a name loses them silently. Refusing
them where they are typed names the argument and the character instead.
"""

from __future__ import annotations

import re

import click

# Outside XML 1.0's Char production, or line breaks, which a one-line word (a name, an identifier) has no use for.
_NOT_XML = r"\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
_REFUSED = {False: re.compile(f"[{_NOT_XML}\n\r]"), True: re.compile(f"[{_NOT_XML}]")}


class Text(click.ParamType):
    name = "text"

    def __init__(self, lines: bool = False) -> None:
        self.refused = _REFUSED[lines]

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201 - click's signature
        if not isinstance(value, str):
            return value
        if (bad := self.refused.search(value)) is not None:
            char = bad.group()
            if "\ud800" <= char <= "\udfff":  # a byte the shell passed that is not UTF-8
                self.fail(f"{value!r} is not UTF-8 text (a byte 0x{ord(char) - 0xdc00:02x})", param, ctx)
            self.fail(f"{value!r} holds a control character (U+{ord(char):04X})", param, ctx)
        return value


TEXT = Text()
LINES = Text(lines=True)  # a description: several lines
