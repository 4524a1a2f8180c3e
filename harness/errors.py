"""The one exception type a user sees as a message rather than a traceback."""


class GapbenchError(Exception):
    """An error the user can act on.

    The message is one paragraph: what went wrong, naming the file, line or field,
    and what to do about it. The command line prints it and exits non-zero.
    """
