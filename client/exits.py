"""Exit codes scripts can rely on (documented in ``riffle --help`` and the README)."""

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    ERROR = 1  # anything not below
    USAGE = 2  # a wrong command line (click's own code)
    CREDENTIALS = 3  # no user id/token, or riffle rejected them (401)
    NOT_FOUND = 4  # no such recording or upload (404, 410)
    REJECTED = 5  # riffle turned the input down: not a WAV, too large, too long, corrupt (4xx)
    UNAVAILABLE = 6  # riffle unreachable, busy or down (network, 429, 503, 504, 507): retry later
    INTERRUPTED = 130  # Ctrl-C; an upload resumes where it stopped when run again


EXIT_CODES_HELP = """Exit codes: 0 done; 1 other error; 2 wrong usage; 3 no or rejected credentials;
4 not found; 5 input rejected (not a WAV, too large, too long, corrupt); 6 riffle unreachable,
busy or down (try again later); 130 interrupted (run again to resume)."""


def exit_for_status(status: int) -> Exit:
    if status == 401:
        return Exit.CREDENTIALS
    if status in (404, 410):
        return Exit.NOT_FOUND
    if status in (408, 429, 502, 503, 504, 507):
        return Exit.UNAVAILABLE
    if 400 <= status < 500:
        return Exit.REJECTED
    return Exit.ERROR
