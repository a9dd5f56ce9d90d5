"""User errors: bad data, bad options, settings that cannot go together.

The command line prints such an error as one short message (no traceback unless ``LIT_IWPO_DEBUG=1``),
so its text must say what is wrong, where (file/row/field or the option) and what to do.
"""

from __future__ import annotations


class UserError(ValueError):
    """An error the user fixes in their data, config or command line, not in lit_iwpo's code."""


class ConfigError(UserError):
    """An option value, or a combination of options, that cannot work. The message names the option."""
