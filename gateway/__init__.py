"""riffle's public gateway: users, uploads, downloads."""

import sys

# httpx imports its command line (click, rich, pygments: 3 MB resident) whenever they are
# installed, and they are: the `riffle` client's own dependencies. A None entry makes that
# import fail, which httpx takes as "not installed"; the gateway never runs httpx's CLI.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
