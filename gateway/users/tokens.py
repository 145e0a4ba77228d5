"""Access tokens: random UUID4s shown once; only their SHA-256 is kept."""

import hashlib
import hmac
import re
import uuid

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
# Compared against when the user does not exist, so that case costs the same as a wrong token.
_NO_USER_HASH = hashlib.sha256(b"no such user").digest()


def new_token() -> str:
    return str(uuid.uuid4())


def hash_token(token: str) -> bytes:
    """Hash the lower-case form: the case of the hex digits does not matter."""
    return hashlib.sha256(token.lower().encode()).digest()


def well_formed(token: str | None) -> bool:
    """A token in the form we issue them: a UUID's canonical text (either case)."""
    return token is not None and _CANONICAL_UUID.fullmatch(token) is not None


def token_matches(presented: str | None, stored_hash: bytes | None) -> bool:
    """Constant-time check; a missing, malformed or unknown token is simply no match."""
    well_formed_ = well_formed(presented)
    presented_hash = hash_token(presented if presented and well_formed_ else "")
    same = hmac.compare_digest(presented_hash, stored_hash or _NO_USER_HASH)
    return same and well_formed_ and stored_hash is not None
