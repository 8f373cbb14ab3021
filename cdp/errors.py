"""Errors the CLI turns into a clear message and a non-zero exit (never a traceback)."""


class CdpError(Exception):
    """A step could not do its work; the message says what, where and which rule.

    Messages never contain raw PII: name the file, row number, column and rule, not the value.
    """
