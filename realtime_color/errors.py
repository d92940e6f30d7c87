"""The one base of every error rtcolor raises on purpose, and the error for settings that break their rules.

Every project exception derives from ``RtcolorError``, so the CLI catches it in one place and prints
one line (the message names the value and the fix) with a non-zero exit status, instead of each
command keeping its own tuple. Subclasses keep a builtin base where callers catch by it
(``CheckpointError`` is also a ``ValueError``, ``OutputError`` an ``OSError``).

The library speaks in its configs' field names (``batch_size``); only the CLI knows that the
field is spelled ``--batch-size`` there, so ``ConfigError`` keeps the fields and lets its caller spell them.
"""

from __future__ import annotations

from collections.abc import Callable


class RtcolorError(Exception):
    """Base of rtcolor's errors: something rtcolor was asked to do and cannot, said in one line."""

    exit_code = 2  # the CLI's exit status: 2 for what the user asked (a bad file, model, setting)


class NotFoundError(RtcolorError, FileNotFoundError):
    """A file or folder rtcolor was pointed at that is not there."""


class ConfigError(RtcolorError, ValueError):
    """Settings that break their rules, every one at once, each with its rule.

    ``problems`` holds (field, value, rule); a rule may name other fields as ``{field}``, so the
    CLI can print every name as its option (``spelled``) while the library prints field names.
    """

    def __init__(self, problems: list[tuple[str, object, str]]) -> None:
        self.problems = problems
        super().__init__(self.spelled(str))

    def spelled(self, spell: Callable[[str], str]) -> str:
        """The message with every field name written as ``spell(field)``."""

        class _Names(dict):
            def __missing__(self, key: str) -> str:
                return spell(key)

        return "; ".join(
            f"{spell(field)} {value!r} must be {rule.format_map(_Names())}" for field, value, rule in self.problems
        )

    @classmethod
    def check(cls, cfg: object, rules: dict[str, tuple[bool, str]]) -> None:
        """Raise naming every field of ``cfg`` whose rule (``field: (ok, rule)``) is broken."""
        bad = [(name, getattr(cfg, name), rule) for name, (ok, rule) in rules.items() if not ok]
        if bad:
            raise cls(bad)
