"""Players: registration, log-in, guests and claiming a guest account.

Passwords are stored only as salted hashes (werkzeug's scrypt).
"""

from __future__ import annotations

import re
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

from game.app import store as st
from game.errors import ProofQuestError

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
MIN_PASSWORD = 8


def _check(username: str, password: str) -> None:
    if not isinstance(username, str) or not USERNAME.match(username):
        raise ProofQuestError("a username has 3 to 32 letters, digits, '.', '_' or '-'")
    if username.lower().startswith(("guest-", "student-")):
        raise ProofQuestError("usernames starting with 'guest-' or 'student-' are kept for guests and students;"
                              " choose another")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ProofQuestError(f"a password needs at least {MIN_PASSWORD} characters")


def register(store: st.Store, username: str, password: str, *, role: str = "player") -> dict:
    _check(username, password)
    return st.create_player(store, username, generate_password_hash(password), role=role)


def authenticate(store: st.Store, username: str, password: str) -> dict:
    row = st.player_credentials(store, username) if isinstance(username, str) else None
    if not row or not row["password_hash"] or not check_password_hash(row["password_hash"], password or ""):
        raise ProofQuestError("wrong username or password")
    return st.player(store, row["id"])


def create_guest(store: st.Store) -> dict:
    for _ in range(5):
        name = f"guest-{secrets.token_hex(3)}"
        if st.player_credentials(store, name) is None:
            return st.create_player(store, name, None, is_guest=True)
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
