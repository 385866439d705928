"""Names users give to range sets, batches and walks: a safe character set and length, checked in one place."""

from __future__ import annotations

import re

from covcall.errors import SpecError

MAX_NAME_LENGTH = 64
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+-]*$")


def check_name(value: object, what: str = "name") -> str:
    """The name, stripped, when it is 1-64 characters of letters, digits, space, `_ . + -` (starting with a
    letter or digit); otherwise a SpecError saying what is allowed. Names end up in file and folder names.

    >>> check_name(" btc regimes v2 ")
    'btc regimes v2'
    >>> check_name("../etc", "walk name")
    Traceback (most recent call last):
    covcall.errors.SpecError: walk name '../etc' may only hold letters, digits, spaces and _ . + - (starting with a letter or digit)
    """
    if not isinstance(value, str):
        raise SpecError(f"{what} must be text; got {type(value).__name__}")
    name = value.strip()
    if not name:
        raise SpecError(f"{what} is empty; give it a short name such as 'btc-regimes'")
    if len(name) > MAX_NAME_LENGTH:
        raise SpecError(f"{what} is {len(name)} characters long; keep it to {MAX_NAME_LENGTH}")
    if not _NAME.match(name):
        raise SpecError(f"{what} {name!r} may only hold letters, digits, spaces and _ . + - "
                        "(starting with a letter or digit)")
    return name


def plural(n: int, noun: str) -> str:
    """'1 training range', '3 training ranges'.

    >>> plural(1, "training range"), plural(3, "training range")
    ('1 training range', '3 training ranges')
    """
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
