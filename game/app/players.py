"""Players: registration, log-in, guests and claiming a guest account.

Passwords are stored only as salted hashes (werkzeug's scrypt). The address an
account was made from is kept only as a keyed hash (:func:`address_key`), enough
to see many accounts coming from one place, not to recover the address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from functools import lru_cache

from werkzeug.security import check_password_hash, generate_password_hash

from game.app import store as st
from game.errors import ProofQuestError

USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,32}")  # matched in full: no newline or other control character
MIN_PASSWORD = 8


def _check(username: str, password: str) -> None:
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise ProofQuestError("a username has 3 to 32 letters, digits, '.', '_' or '-'")
    if username.lower().startswith(("guest-", "student-")):
        raise ProofQuestError("usernames starting with 'guest-' or 'student-' are kept for guests and students;"
                              " choose another")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ProofQuestError(f"a password needs at least {MIN_PASSWORD} characters")


def address_key(secret: str, address: str | None) -> str | None:
    """A short keyed hash of a client address: equal for equal addresses, useless without the secret.

    IPv6 addresses are cut to their /64 network first (one household or
    phone gets a whole /64, and changes address inside it); 16 hex digits
    (64 bits) keep collisions between a site's players negligible.
    """
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is None:
        ip = ipaddress.ip_network(f"{ip}/64", strict=False).network_address
    elif ip.version == 6:
        ip = ip.ipv4_mapped
    return hmac.new(secret.encode(), ip.packed, hashlib.sha256).hexdigest()[:16]


def register(store: st.Store, username: str, password: str, *, role: str = "player",
             address: str | None = None) -> dict:
    """A new registered player; ``address`` is the :func:`address_key` of where it came from."""
    _check(username, password)
    return st.create_player(store, username, generate_password_hash(password), role=role, address=address)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash made like the real ones, checked when there is no real one to check."""
    return generate_password_hash(secrets.token_hex(16))


def authenticate(store: st.Store, username: str, password: str) -> dict:
    """The player with these credentials; the same time and message whether the username exists or not.

    An unknown username (or a guest, who has no password) costs one password
    hash like a known one, so timing does not tell which usernames exist.
    """
    if not isinstance(username, str) or not isinstance(password, str):
        raise ProofQuestError("a username and a password are text")
    row = st.player_credentials(store, username) if USERNAME.fullmatch(username) else None
    stored = row["password_hash"] if row and row["password_hash"] else None
    if not check_password_hash(stored or _dummy_hash(), password) or stored is None:
        raise ProofQuestError("wrong username or password")
    return st.player(store, row["id"])


def create_guest(store: st.Store, *, address: str | None = None) -> dict:
    for _ in range(5):
        name = f"guest-{secrets.token_hex(3)}"
        if st.player_credentials(store, name) is None:
            return st.create_player(store, name, None, is_guest=True, address=address)
    raise ProofQuestError("could not find a free guest name; try again")


def claim_guest(store: st.Store, player_id: int, username: str, password: str) -> dict:
    """Give a guest a username and password; the points and votes stay theirs."""
    player = st.player(store, player_id)
    if player is None:
        raise ProofQuestError("unknown player; log in again")
    if not player["is_guest"]:
        raise ProofQuestError("this account already has a username and password")
    if st.member(store, player_id) is not None:
        raise ProofQuestError("a class nickname needs no password: come back with your class code")
    _check(username, password)
    return st.claim_player(store, player_id, username, generate_password_hash(password))
