"""Mistakes a user can fix (a missing file, a wrong format, no daemon at an address).

Commands raise UserError with a message that says what to do; `worldbridge` prints it as one line,
`worldbridge: error: ...`, and exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; the message is shown as it is."""
