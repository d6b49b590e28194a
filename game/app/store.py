"""The SQLite store: schema, migrations and every query of ProofQuest.

This is the only module that writes SQL. Every function takes the
:class:`Store` first, so it can be tested without a web app.

Writes follow datasette's one-writer pattern: they run under one lock inside
``BEGIN IMMEDIATE`` (see :meth:`Store.write`), reads run freely on pooled
connections. The file is in WAL mode so readers never block the
writer.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import sqlite_utils

from game.concurrency import green
from game.errors import ProofQuestError
from game.puzzles.edit import candidate_value, edit_value

# Each entry migrates the schema from version i to i + 1; never edit one that has shipped.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE edits (
        id INTEGER PRIMARY KEY,
        volume TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('merge', 'split', 'undo')),
        supervoxels TEXT NOT NULL,
        source INTEGER NOT NULL,
        target INTEGER NOT NULL,
        undoes INTEGER,
        author TEXT NOT NULL,
        puzzle_id INTEGER,
        provenance TEXT,
        created REAL NOT NULL,
        UNIQUE (volume, seq)
    );
    """,
    """
    CREATE TABLE players (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT,
        is_guest INTEGER NOT NULL DEFAULT 0,
        role TEXT NOT NULL DEFAULT 'player' CHECK (role IN ('player', 'teacher', 'admin')),
        points INTEGER NOT NULL DEFAULT 0,
        streak INTEGER NOT NULL DEFAULT 0,
        best_streak INTEGER NOT NULL DEFAULT 0,
        reliability REAL,
        tutorial_done INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL
    );
    CREATE TABLE puzzles (
        id INTEGER PRIMARY KEY,
        volume TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('merge', 'split')),
        anchors TEXT NOT NULL,
        supervoxels TEXT NOT NULL,
        segments TEXT NOT NULL,
        location TEXT NOT NULL,
        score REAL NOT NULL,
        truth INTEGER,
        gold INTEGER NOT NULL DEFAULT 0,
        tutorial INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'retired', 'expert', 'moot')),
        decision INTEGER,
        posterior REAL,
        confidence REAL,
        n_votes INTEGER NOT NULL DEFAULT 0,
        edit_seq INTEGER,
        detector TEXT,
        created REAL NOT NULL,
        retired REAL
    );
    CREATE INDEX puzzles_state ON puzzles (volume, state, gold);
    CREATE TABLE votes (
        id INTEGER PRIMARY KEY,
        puzzle_id INTEGER NOT NULL REFERENCES puzzles (id),
        player_id INTEGER NOT NULL REFERENCES players (id),
        answer TEXT NOT NULL CHECK (answer IN ('yes', 'no', 'unsure')),
        supports_edit INTEGER,
        ms INTEGER,
        points INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        UNIQUE (puzzle_id, player_id)
    );
    CREATE INDEX votes_player ON votes (player_id, created);
    CREATE TABLE point_events (
        id INTEGER PRIMARY KEY,
        player_id INTEGER NOT NULL REFERENCES players (id),
        points INTEGER NOT NULL,
        reason TEXT NOT NULL,
        puzzle_id INTEGER,
        created REAL NOT NULL
    );
    CREATE INDEX point_events_time ON point_events (created, player_id);
    CREATE TABLE jobs (
        name TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        done INTEGER NOT NULL DEFAULT 0,
        total INTEGER NOT NULL DEFAULT 0,
        message TEXT,
        updated REAL NOT NULL
    );
    """,
    # Classes: join codes (kept after rotation or closing, so an old code gets a clear message), students
    # (a player bound to one class by a nickname and a device), timed rounds; who decided each edit.
    """
    CREATE TABLE classes (
        id INTEGER PRIMARY KEY,
        teacher_id INTEGER NOT NULL REFERENCES players (id),
        name TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX classes_teacher ON classes (teacher_id);
    CREATE TABLE join_codes (
        code TEXT PRIMARY KEY,
        class_id INTEGER NOT NULL REFERENCES classes (id),
        created REAL NOT NULL,
        expires REAL NOT NULL,
        closed REAL
    );
    CREATE INDEX join_codes_class ON join_codes (class_id, created);
    CREATE TABLE class_members (
        player_id INTEGER PRIMARY KEY REFERENCES players (id),
        class_id INTEGER NOT NULL REFERENCES classes (id),
        nickname TEXT NOT NULL,
        device TEXT NOT NULL,
        joined REAL NOT NULL,
        removed REAL
    );
    CREATE UNIQUE INDEX class_nicknames ON class_members (class_id, nickname COLLATE NOCASE) WHERE removed IS NULL;
    CREATE INDEX class_devices ON class_members (class_id, device);
    CREATE TABLE rounds (
        id INTEGER PRIMARY KEY,
        class_id INTEGER NOT NULL REFERENCES classes (id),
        puzzle_set TEXT NOT NULL CHECK (puzzle_set IN ('practice', 'mixed', 'assessment')),
        seconds INTEGER NOT NULL,
        started REAL NOT NULL,
        ends REAL NOT NULL,
        ended REAL
    );
    CREATE INDEX rounds_class ON rounds (class_id, started);
    CREATE TABLE edit_credits (
        edit_id INTEGER NOT NULL REFERENCES edits (id),
        player_id INTEGER NOT NULL REFERENCES players (id),
        PRIMARY KEY (edit_id, player_id)
    );
    CREATE INDEX edit_credits_player ON edit_credits (player_id);
    CREATE INDEX point_events_player ON point_events (player_id, created);
    INSERT INTO edit_credits (edit_id, player_id)
        SELECT DISTINCT e.id, v.player_id FROM edits e JOIN votes v ON v.puzzle_id = e.puzzle_id
        WHERE e.author = 'consensus' AND e.kind != 'undo' AND v.supports_edit = 1 AND v.created <= e.created;
    """,
    # Known-truth puzzles that teach (their outcome is shown) apart from the secret gold that measures players;
    # a player counts in consensus once established by a record (see game.crowd.reliability).
    """
    ALTER TABLE puzzles ADD COLUMN teach INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE players ADD COLUMN established INTEGER NOT NULL DEFAULT 0;
    """,
    # Admin: suspended players' votes stop counting; the (keyed-hash) address an account was made from;
    # which volumes the game hands out puzzles from (a volume without a row is live).
    """
    ALTER TABLE players ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE players ADD COLUMN created_address TEXT;
    CREATE INDEX players_address ON players (created_address);
    CREATE TABLE volume_state (
        volume TEXT PRIMARY KEY,
        live INTEGER NOT NULL DEFAULT 1,
        updated REAL NOT NULL
    );
    CREATE INDEX votes_time ON votes (created);
    """,
    # The living pool asks each question once: what a puzzle's edit does, independent of segment ids.
    """
    ALTER TABLE puzzles ADD COLUMN key TEXT;
    CREATE UNIQUE INDEX puzzles_key ON puzzles (volume, key) WHERE key IS NOT NULL;
    ALTER TABLE puzzles ADD COLUMN judgeable INTEGER NOT NULL DEFAULT 1;
    """,
    # Server-side sessions: log-out revokes them (the cookie holds a token, the database its hash).
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        player_id INTEGER NOT NULL REFERENCES players (id),
        created REAL NOT NULL,
        expires REAL NOT NULL
    );
    CREATE INDEX sessions_player ON sessions (player_id);
    """,
    # Gold without ground truth: a puzzle with a known answer copied from a decision settled beyond doubt
    # (game.crowd.settled) names the puzzle it copies, so nobody who voted on that one is measured by the copy.
    """
    ALTER TABLE puzzles ADD COLUMN settled_from INTEGER REFERENCES puzzles (id);
    CREATE INDEX puzzles_settled_from ON puzzles (settled_from) WHERE settled_from IS NOT NULL;
    """,
    # Whether each vote counted in the crowd decision that retired its puzzle (1 or 0; NULL while the puzzle is
    # open, or when an admin decided it): the audit of who decided what, kept as it was at the decision.
    # How many candidates of a volume waited for room (POOL_OPEN) at its last whole scan: a process started later
    # scans it again to learn them.
    """
    ALTER TABLE votes ADD COLUMN counted INTEGER;
    ALTER TABLE volume_state ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0;
    """,
    # The yes/no votes that count in an open puzzle's consensus (established players'), written with its
    # posterior after every vote: the hand-out order and how many players hold a puzzle at once read these, not
    # n_votes, so votes that weigh nothing steer nothing. Until their next vote, open puzzles keep n_votes.
    """
    ALTER TABLE puzzles ADD COLUMN counted_votes INTEGER NOT NULL DEFAULT 0;
    UPDATE puzzles SET counted_votes = n_votes;
    """,
    # What a right answer's edit gains (game.puzzles.edit.edit_value of the detector's part sizes; NULL
    # without them): open puzzles are handed out by what they are expected to gain (see _priority_sql).
    """
    ALTER TABLE puzzles ADD COLUMN value REAL;
    UPDATE puzzles SET value = pq_edit_value(json_extract(detector, '$.features.size_a'),
                                             json_extract(detector, '$.features.size_b'))
        WHERE detector IS NOT NULL AND json_valid(detector);
    """,
    # Each player's points per calendar week (week_of), kept by add_points beside the point events: the week's
    # board reads one row per player who scored this week, where summing the week's events took 1.6 s at a
    # million of them (bench/bench_leaderboard.py), on the event loop, every LEADERBOARD_INTERVAL.
    """
    CREATE TABLE week_points (
        week INTEGER NOT NULL,
        player_id INTEGER NOT NULL REFERENCES players (id),
        points INTEGER NOT NULL,
        reached REAL NOT NULL,
        PRIMARY KEY (week, player_id)
    );
    CREATE INDEX week_points_rank ON week_points (week, points DESC, reached);
    INSERT INTO week_points (week, player_id, points, reached)
        SELECT pq_week(created), player_id, SUM(points), MAX(created) FROM point_events GROUP BY 1, 2;
    """,
    # The open split puzzles, read on every puzzle request (open_split_parts: which merges wait for a cut), from
    # an index that holds all the query reads: through the state index each open puzzle's row was visited, big
    # detector JSON and all, and on the default demo's pool (884 open puzzles, 168 splits) that query was 29% of
    # a server's time under 200 players (bench/bench_socket.py --home of a first start).
    """
    CREATE INDEX puzzles_open_splits ON puzzles (kind, state, gold, tutorial, volume, posterior, score, supervoxels)
        WHERE kind = 'split' AND state = 'open';
    """,
    # The order puzzles were made in, apart from their ids: players are sent ids, and numbered in order of making
    # they told a secret gold puzzle (made first, with the other known answers) from a crowd one (the re-attack
    # helper separated 63 of 63 by id < 57), and every puzzle made after a first start as crowd. Ids are random
    # from now on (add_puzzles); ``made`` keeps the order (the old ids, for puzzles made before).
    """
    ALTER TABLE puzzles ADD COLUMN made INTEGER;
    UPDATE puzzles SET made = id;
    CREATE INDEX puzzles_made ON puzzles (volume, made);
    """,
    # Accounts that answer as one share one voice (game.crowd.voices): ``voice``, the lowest player id of the voice
    # (NULL: their own); ``voice_checked``, the voice under which the decisions their votes made were last checked
    # again (-1: due); ``one_sided``, 1 when their crowd answers back the edit whatever the puzzle shows (their
    # votes stop counting; game.crowd.reliability), -1 when an admin overruled that
    """
    ALTER TABLE players ADD COLUMN voice INTEGER;
    ALTER TABLE players ADD COLUMN voice_checked INTEGER;
    ALTER TABLE players ADD COLUMN one_sided INTEGER NOT NULL DEFAULT 0;
    """,
    # The yes/no answers on a puzzle of every player past the introduction, whether their votes count or not
    # (votes cast before this migration: every player's): ``answers`` and ``supports``
    # (those that back the edit). The hand-out order reads these, never the posterior or the counted votes:
    # an observer account reading the order before and after a probe account's vote told whether the probe's
    # votes counted, and so whether its gold answers were right (a helper harvested 35 of 36 secret gold
    # answers in 4.2 minutes). The open splits' index carries them instead of the posterior.
    """
    ALTER TABLE puzzles ADD COLUMN answers INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE puzzles ADD COLUMN supports INTEGER NOT NULL DEFAULT 0;
    UPDATE puzzles SET answers = (SELECT COUNT(*) FROM votes v WHERE v.puzzle_id = puzzles.id
                                  AND v.supports_edit IS NOT NULL),
                       supports = (SELECT COUNT(*) FROM votes v WHERE v.puzzle_id = puzzles.id
                                   AND v.supports_edit = 1);
    DROP INDEX puzzles_open_splits;
    CREATE INDEX puzzles_open_splits ON puzzles (kind, state, gold, tutorial, volume, answers, supports, score,
                                                 supervoxels) WHERE kind = 'split' AND state = 'open';
    """,
    # ``belief``: the detector's score moved by those answers, each weighing as one careful player's
    # (game.crowd.votes.cast_vote; NULL: the score, until the next answer), as the posterior moves with a
    # counted vote. The share of answers that back the edit, with the score worth two, closed 63% / 59% of the
    # true ARE / VI gap on demo0 (bench/bench_simulate.py, seeds 0-2), this 71% / 67%
    """
    ALTER TABLE puzzles ADD COLUMN belief REAL;
    DROP INDEX puzzles_open_splits;
    CREATE INDEX puzzles_open_splits ON puzzles (kind, state, gold, tutorial, volume, belief, score, supervoxels)
        WHERE kind = 'split' AND state = 'open';
    """,
]

WEEK_SECONDS = 7 * 86400
PUZZLE_ID_SPACE = 10**8  # puzzle ids are drawn from 1 .. 99,999,999 (see _new_puzzle_id): 8 digits on a page
_FIRST_MONDAY = 4 * 86400  # 1970-01-05 00:00 UTC


def week_of(t: float) -> int:
    """The calendar week ``t`` (seconds since the epoch) falls in, Monday 00:00 UTC to the next: the weekly
    board's period, counted in weeks from the epoch's first Monday."""
    return math.floor((t - _FIRST_MONDAY) / WEEK_SECONDS)


def week_start(week: int) -> float:
    """The first second of :func:`week_of`'s ``week`` (a Monday, 00:00 UTC)."""
    return _FIRST_MONDAY + week * WEEK_SECONDS


def _stored_edit_value(size_a, size_b) -> float | None:
    """:func:`game.puzzles.edit.edit_value` of sizes read from a stored detector JSON; None where they are not
    numbers (an imported candidate's), so that no stored value stops the schema's upgrade."""
    try:
        return edit_value(size_a, size_b)
    except (TypeError, ValueError):
        return None


# Seconds a write waits for another process's write lock before it fails (SQLite's busy timeout)
WRITE_WAIT_SECONDS = 30
# Longest pause between two tries of a busy write lock under gevent (a try costs microseconds, and only one
# greenlet of a process tries; gevent's timers wait at least about 1 ms, so every pause is about that)
WRITE_RETRY_SECONDS = 0.001


class Store:
    """One SQLite file, one writer at a time, reads on pooled connections.

    Connections are kept and reused rather than made per thread: the
    Socket.IO server runs handlers on short-lived threads, and opening a
    connection (with its pragmas) per event cost more than the event.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()  # the writer's connection, bound while its thread is in write()
        self._write_lock = threading.RLock()
        self._green = green()  # gevent's patched standard library: waits must let the event loop go on
        self._writer: sqlite_utils.Database | None = None
        self._idle: list[sqlite_utils.Database] = []  # read connections not in use (append/pop are atomic)
        self.priority_index: tuple[tuple[float, str], str] | None = None  # ((min_votes, order), name)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _private_file(self.path)
        try:
            migrate(self)
        except sqlite3.DatabaseError as exc:
            raise ProofQuestError(f"the database {self.path} is not a readable SQLite file ({exc}); "
                                  "move it away to start a fresh one") from exc

    def _connect(self) -> sqlite_utils.Database:
        conn = sqlite3.connect(self.path, timeout=WRITE_WAIT_SECONDS, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.create_function("pq_edit_value", 2, _stored_edit_value, deterministic=True)  # the migrations above
        conn.create_function("pq_week", 1, week_of, deterministic=True)
        return sqlite_utils.Database(conn)

    @contextmanager
    def reading(self) -> Iterator[sqlite_utils.Database]:
        """A connection to read on: inside a write, the writer's own (it sees the open transaction)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            yield db
            return
        try:
            db = self._idle.pop()
        except IndexError:
            db = self._connect()
        try:
            yield db
        finally:
            if db.conn.in_transaction:  # never hand on a connection holding a read snapshot
                db.conn.execute("ROLLBACK")
            self._idle.append(db)

    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """Run the block as one transaction on the single writer; commit or roll back.

        A write inside a write joins the outer transaction. Under gevent the
        players' greenlets share one native thread (and this store's
        thread-local state and lock), so a write's body must never switch to
        another greenlet: it runs SQLite calls and in-memory work only.

        Under gevent, waiting never stops the event loop. While this process's
        worker thread holds the writer (a refit, a rescan), a greenlet waits
        with gevent's sleep between tries of the lock; while another process
        holds SQLite's write lock (server processes sharing one file),
        ``BEGIN IMMEDIATE`` is tried again the same way, without this
        process's lock, where SQLite's busy handler slept in C and stopped
        every player of the process. Only one greenlet of a thread tries,
        about every millisecond (gevent's timers go no finer): the others
        queue, parked, at the thread's gate (gevent's semaphore, in the order
        they came, though a greenlet that writes again at once may go first).
        When each waiting greenlet tried by itself, 1,000 players on 2 to 4
        processes spent their CPU on tries (on a 16-core machine 2 processes
        gave fewer votes a second than 1, at 2.2 times its CPU per vote, p99
        5 s; ``bench/bench_socket.py``). With OS threads a wait blocks only
        its thread, and SQLite's own busy wait hands the lock between
        processes sooner (``bench/bench_writer.py``: 2 processes polling
        committed 24% fewer votes a second). A write waits for its own turn
        at the gate and for this process's worker as long as they take, and
        gives up on another process's lock after ``WRITE_WAIT_SECONDS``.
        (Reads wait in SQLite's busy handler, which WAL makes rare.)
        """
        if self.in_write():
            yield self._local.db
            return
        if not self._green:
            with self._locked() as db:
                yield db
            return
        gate = getattr(self._local, "gate", None)
        if gate is None:
            from gevent.lock import Semaphore
            gate = self._local.gate = Semaphore()
        with gate:  # its turn, however long the writes before it take (as a thread waits for the lock)
            with self._locked() as db:
                yield db

    @contextmanager
    def _locked(self) -> Iterator[sqlite_utils.Database]:
        """:meth:`write`'s transaction, once this process's writer lock and SQLite's are taken; SQLite's
        'database is locked' when another process held its lock for ``WRITE_WAIT_SECONDS``."""
        deadline, pause = time.monotonic() + WRITE_WAIT_SECONDS, 0.0001
        while True:
            if not self._write_lock.acquire(blocking=not self._green):
                time.sleep(pause)  # this process's other thread writes (gevent: the other greenlets go on)
                pause = min(pause * 2, WRITE_RETRY_SECONDS)
                continue
            try:
                if self._writer is None:
                    self._writer = self._connect()
                    if self._green:  # busy: answered at once, and waited for below without stopping the loop
                        self._writer.conn.execute("PRAGMA busy_timeout = 0")
                db = self._writer
                if db.conn.in_transaction:  # left over from a failed COMMIT: never build on it
                    db.conn.execute("ROLLBACK")
                try:
                    db.conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    if (exc.sqlite_errorcode & 0xFF) != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                        raise
                else:
                    self._local.db, self._local.after = db, []
                    try:
                        try:
                            yield db
                            db.conn.execute("COMMIT")
                        except BaseException:
                            if db.conn.in_transaction:
                                try:
                                    db.conn.execute("ROLLBACK")
                                except sqlite3.Error:
                                    pass  # the original error is the one to report
                            raise
                        for callback in self._local.after:  # still under the lock: no write sees memory lag
                            callback()
                    finally:
                        self._local.db = None
                        self._local.after = []
                    return
            finally:
                self._write_lock.release()
            time.sleep(pause)  # another process writes: wait without holding this process's writer lock
            pause = min(pause * 2, WRITE_RETRY_SECONDS)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the current write commits (never if it rolls back).

        Memory that mirrors the database (the live segmentation) changes only
        after the change is durable: the callbacks run after COMMIT, still
        under the writer lock, in the order they were registered.
        """
        if getattr(self._local, "db", None) is None:
            raise RuntimeError("after_commit needs an open write transaction")
        self._local.after.append(callback)

    def in_write(self) -> bool:
        """Whether this thread is inside :meth:`write`."""
        return getattr(self._local, "db", None) is not None

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict]:
        """Rows as dicts by column name (the first of two columns with one name wins, as ``sqlite3.Row``)."""
        with self.reading() as db:
            cursor = db.conn.cursor()
            cursor.row_factory = None  # plain tuples zipped with the names: a third of dict(sqlite3.Row)'s cost
            rows = cursor.execute(sql, params).fetchall()
            names = [d[0] for d in cursor.description or ()]
        if len(set(names)) < len(names):
            first = [names.index(n) for n in names]
            return [{n: r[i] for n, i in zip(names, first)} for r in rows]
        return [dict(zip(names, r)) for r in rows]

    def scalar(self, sql: str, params: tuple | dict = ()):
        """The first column of the first row (None when there is no row)."""
        with self.reading() as db:
            row = db.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        """Close every connection not in use; the store reconnects when used again."""
        with self._write_lock:
            idle, self._idle = self._idle, []
            for db in idle:
                db.conn.close()
            if self._writer is not None:
                self._writer.conn.close()
                self._writer = None


def _private_file(path: Path) -> None:
    """The database holds password hashes: create it (and so its -wal and -shm, which SQLite makes with the
    database's mode) 0600 whatever the umask, and tighten one made before."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def migrate(store: Store) -> int:
    """Bring the schema to the newest version; returns it."""
    with store.write() as db:
        version = db.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise ProofQuestError(f"the database {store.path} was made by a newer ProofQuest "
                                  f"(schema {version} > {len(MIGRATIONS)}); upgrade the program")
        for i in range(version, len(MIGRATIONS)):
            for statement in MIGRATIONS[i].split(";"):
                if statement.strip():
                    db.conn.execute(statement)
            db.conn.execute(f"PRAGMA user_version = {i + 1}")
    return len(MIGRATIONS)


# ----------------------------------------------------------------------------- edit log

def append_edit(store: Store, volume: str, edit: dict, *, author: str, puzzle_id: int | None = None,
                provenance: dict | None = None) -> int:
    """Append one edit (``Edit.to_dict()``) to a volume's log; returns its sequence number.

    The players listed under ``provenance["supporters"]`` (every player who backed it; in logs made before,
    ``deciders``: those whose counted votes decided it) are credited with the edit (see :func:`credited_edits`).
    """
    with store.write() as db:
        seq = db.conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM edits WHERE volume = ?",
                              (volume,)).fetchone()[0]
        cur = db.conn.execute(
            "INSERT INTO edits (volume, seq, kind, supervoxels, source, target, undoes, author, puzzle_id,"
            " provenance, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (volume, seq, edit["kind"], json.dumps(list(map(int, edit["supervoxels"]))), int(edit["source"]),
             int(edit["target"]), edit.get("undoes"), author, puzzle_id,
             json.dumps(provenance) if provenance else None, time.time()))
        db.conn.executemany("INSERT OR IGNORE INTO edit_credits (edit_id, player_id) VALUES (?, ?)",
                            [(cur.lastrowid, int(p)) for p in (provenance or {}).get(
                                "supporters", (provenance or {}).get("deciders", ()))])
    return seq


def edits(store: Store, volume: str) -> list[dict]:
    """A volume's edit log in order, each row with its edit dict under ``edit``."""
    rows = store.query("SELECT * FROM edits WHERE volume = ? ORDER BY seq", (volume,))
    for row in rows:
        row["edit"] = {"kind": row["kind"], "supervoxels": json.loads(row["supervoxels"]),
                       "source": row["source"], "target": row["target"], "undoes": row["undoes"]}
        row["provenance"] = json.loads(row["provenance"]) if row["provenance"] else None
    return rows


def edit_count(store: Store, volume: str) -> int:
    return store.scalar("SELECT COUNT(*) FROM edits WHERE volume = ?", (volume,))


def known_answer_edit_count(store: Store) -> int:
    """Edits applied from answers known beforehand (gold, teach and practice puzzles; author 'known-answer')."""
    return store.scalar("SELECT COUNT(*) FROM edits WHERE author = 'known-answer'")


def clear_edits(store: Store, volume: str) -> None:
    """Forget a volume's edit log (when the volume itself is replaced)."""
    with store.write() as db:
        db.conn.execute("DELETE FROM edits WHERE volume = ?", (volume,))


# ----------------------------------------------------------------------------- players

# never the reliability: players are not told the weight their votes carry (it would tell them which
# of their answers to secret gold puzzles were right)
PLAYER_PUBLIC = "id, username, is_guest, role, points, streak, best_streak, tutorial_done, created"


def create_player(store: Store, username: str, password_hash: str | None, *, is_guest: bool = False,
                  role: str = "player", address: str | None = None) -> dict:
    """A new player; ``address`` is the keyed hash of the address the account was made from."""
    with store.write() as db:
        exists = db.conn.execute("SELECT 1 FROM players WHERE username = ?", (username,)).fetchone()
        if exists:
            raise ProofQuestError(f"the username {username!r} is taken; choose another")
        cur = db.conn.execute(
            "INSERT INTO players (username, password_hash, is_guest, role, created, created_address)"
            " VALUES (?, ?, ?, ?, ?, ?)", (username, password_hash, int(is_guest), role, time.time(), address))
        return player(store, cur.lastrowid)


def player(store: Store, player_id: int) -> dict | None:
    rows = store.query(f"SELECT {PLAYER_PUBLIC} FROM players WHERE id = ?", (player_id,))
    return rows[0] if rows else None


def player_credentials(store: Store, username: str) -> dict | None:
    rows = store.query("SELECT id, password_hash, is_guest FROM players WHERE username = ?", (username,))
    return rows[0] if rows else None


def claim_player(store: Store, player_id: int, username: str, password_hash: str) -> dict:
    """Turn a guest into a registered player, keeping id, points and votes."""
    with store.write() as db:
        taken = db.conn.execute("SELECT id FROM players WHERE username = ? AND id != ?",
                                (username, player_id)).fetchone()
        if taken:
            raise ProofQuestError(f"the username {username!r} is taken; choose another")
        db.conn.execute("UPDATE players SET username = ?, password_hash = ?, is_guest = 0 WHERE id = ?",
                        (username, password_hash, player_id))
    return player(store, player_id)


def open_session(store: Store, session_id: str, player_id: int, *, expires: float) -> None:
    """Record a log-in (``session_id``: a digest of the cookie's token); drop the player's expired sessions."""
    now = time.time()
    with store.write() as db:
        db.conn.execute("DELETE FROM sessions WHERE player_id = ? AND expires <= ?", (player_id, now))
        db.conn.execute("INSERT INTO sessions (id, player_id, created, expires) VALUES (?, ?, ?, ?)",
                        (session_id, player_id, now, expires))


def session_player(store: Store, session_id: str, now: float) -> dict | None:
    """The player of a session that has not ended or expired."""
    columns = ", ".join(f"p.{c.strip()}" for c in PLAYER_PUBLIC.split(","))
    rows = store.query(f"SELECT {columns} FROM sessions s JOIN players p ON p.id = s.player_id"
                       " WHERE s.id = ? AND s.expires > ?", (session_id, now))
    return rows[0] if rows else None


def session_owner(store: Store, session_id: str, now: float) -> int | None:
    """The player id of a session that has not ended or expired (one look-up, asked at every socket event)."""
    return store.scalar("SELECT player_id FROM sessions WHERE id = ? AND expires > ?", (session_id, now))


def close_session(store: Store, session_id: str) -> None:
    with store.write() as db:
        db.conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))


def set_role(store: Store, username: str, role: str) -> dict:
    with store.write() as db:
        cur = db.conn.execute("UPDATE players SET role = ? WHERE username = ?", (role, username))
        if cur.rowcount == 0:
            raise ProofQuestError(f"no player named {username!r}")
    return store.query(f"SELECT {PLAYER_PUBLIC} FROM players WHERE username = ?", (username,))[0]


def players_with_role(store: Store, role: str | None = None) -> list[dict]:
    """Registered players (not guests or students), all or those of one role, by name."""
    return store.query(f"SELECT {PLAYER_PUBLIC} FROM players WHERE is_guest = 0 AND (? IS NULL OR role = ?)"
                       " ORDER BY username", (role, role))
def set_suspended(store: Store, player_id: int, suspended: bool) -> dict:
    """Suspend a player (their votes stop counting in puzzles still open) or lift it; the admin's view of them.

    Not part of :data:`PLAYER_PUBLIC`: a suspended player is not told.
    """
    with store.write() as db:
        if db.conn.execute("UPDATE players SET suspended = ? WHERE id = ?",
                           (int(bool(suspended)), int(player_id))).rowcount == 0:
            raise ProofQuestError(f"there is no player {player_id}")
        if not suspended:  # lifting also overrules the server's one-sided finding, for good (-1: never again)
            db.conn.execute("UPDATE players SET one_sided = -1 WHERE id = ? AND one_sided = 1", (int(player_id),))
    return store.query("SELECT id, username, role, suspended FROM players WHERE id = ?", (int(player_id),))[0]


def usernames(store: Store, player_ids) -> dict[int, str]:
    ids = sorted({int(p) for p in player_ids})
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return {r["id"]: r["username"] for r in store.query(f"SELECT id, username FROM players WHERE id IN ({marks})",
                                                         tuple(ids))}


def set_tutorial_done(store: Store, player_id: int) -> None:
    with store.write() as db:
        db.conn.execute("UPDATE players SET tutorial_done = 1 WHERE id = ?", (player_id,))


def _id_chunks(ids, size: int = 500):
    """Distinct ids in sorted chunks of at most ``size`` (under SQLite's bound on parameters), each with its
    ``?`` placeholders: ``(chunk, "?,?,…")``."""
    ids = sorted({int(i) for i in ids})
    for i in range(0, len(ids), size):
        chunk = tuple(ids[i:i + size])
        yield chunk, ",".join("?" * len(chunk))


def when_committed(store: Store, callback: Callable[[], None]) -> None:
    """Run ``callback`` after the current write commits (:meth:`Store.after_commit`), or now outside one."""
    if store.in_write():
        store.after_commit(callback)
    else:
        callback()


def set_reliabilities(store: Store, standing: dict[int, tuple[float, bool]]) -> dict[int, tuple]:
    """Set each player's (reliability, established) from their record; returns, for each player whose
    standing changed, ``((reliability, established) before, after)``."""
    rows = [(float(r), int(bool(e)), int(p)) for p, (r, e) in standing.items()]
    with store.write() as db:
        before = {}
        for chunk, marks in _id_chunks(p for _, _, p in rows):
            before.update((row[0], (row[1], row[2])) for row in db.conn.execute(
                f"SELECT id, reliability, established FROM players WHERE id IN ({marks})", chunk))
        db.conn.executemany("UPDATE players SET reliability = ?, established = ? WHERE id = ?", rows)
    return {p: (before[p], (r, e)) for r, e, p in rows if p in before and before[p] != (r, e)}


# whether a player's votes count in consensus (see game.crowd.reliability), on the players table as p
_COUNTS = "p.established AND NOT p.suspended AND p.one_sided < 1"


def standings(store: Store, player_ids) -> dict[int, tuple[float | None, bool]]:
    """(reliability, counted) of each player: what their votes count for in consensus.

    A vote counts when its player is established, not suspended by an admin and not found one-sided
    (game.crowd.reliability.one_sided_evidence).
    """
    ids = [int(p) for p in player_ids]
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return {r["id"]: (r["reliability"], bool(r["counted"])) for r in store.query(
        f"SELECT id, reliability, {_COUNTS} AS counted FROM players p WHERE id IN ({marks})",
        tuple(ids))}


# a vote (v) on a puzzle (q) that measures its player: a yes/no answer to secret gold with a truth
_SECRET_GOLD_ANSWER = "q.gold AND NOT q.teach AND q.truth IS NOT NULL AND v.supports_edit IS NOT NULL"


def gold_answers(store: Store, player_id: int, *, at_most: int) -> int:
    """How many yes/no answers the player gave to secret gold puzzles (teach ones not counted), counted up to
    ``at_most``: whether right or not, so the count tells nothing of the player's record."""
    return store.scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM votes v JOIN puzzles q ON q.id = v.puzzle_id"
        f" WHERE v.player_id = ? AND {_SECRET_GOLD_ANSWER}"
        " ORDER BY v.created LIMIT ?)", (int(player_id), max(0, int(at_most))))


def add_points(store: Store, player_id: int, points: int, reason: str, *, puzzle_id: int | None = None,
               streak: int | None = None) -> dict:
    """Pay a player (and set their streak); returns their new ``points`` and ``streak``."""
    with store.write() as db:
        if points:
            now = time.time()
            db.conn.execute("INSERT INTO point_events (player_id, points, reason, puzzle_id, created)"
                            " VALUES (?, ?, ?, ?, ?)", (player_id, points, reason, puzzle_id, now))
            db.conn.execute("INSERT INTO week_points (week, player_id, points, reached) VALUES (?, ?, ?, ?)"
                            " ON CONFLICT (week, player_id) DO UPDATE SET points = points + excluded.points,"
                            " reached = MAX(reached, excluded.reached)", (week_of(now), player_id, points, now))
        row = db.conn.execute(
            "UPDATE players SET points = points + ?, streak = COALESCE(?, streak),"
            " best_streak = MAX(best_streak, COALESCE(?, streak)) WHERE id = ? RETURNING points, streak",
            (points, streak, streak, player_id)).fetchone()
        return dict(row) if row is not None else {"points": None, "streak": None}


def leaderboard(store: Store, *, week: int | None = None, class_id: int | None = None,
                limit: int = 20) -> list[dict]:
    """Players by points: all time, or (with ``week``, :func:`week_of`) points earned in that calendar week;
    (with ``class_id``) only that class's students, shown by nickname.

    Every board breaks ties the same way: equal points go to whoever reached them first (the earlier
    last scoring event), then to the older account.
    """
    member = "JOIN class_members m ON m.player_id = p.id AND m.class_id = :class AND m.removed IS NULL" \
        if class_id is not None else "LEFT JOIN class_members m ON m.player_id = p.id"
    if week is None:
        rows = store.query(
            "SELECT p.id, COALESCE(m.nickname, p.username) AS username, p.is_guest, p.points,"
            " (SELECT MAX(e.created) FROM point_events e WHERE e.player_id = p.id) AS reached"
            f" FROM players p {member} WHERE p.points > 0 ORDER BY p.points DESC, reached, p.id LIMIT :limit",
            {"class": class_id, "limit": limit})
    else:
        rows = store.query(
            "SELECT p.id, COALESCE(m.nickname, p.username) AS username, p.is_guest, w.points, w.reached"
            f" FROM week_points w JOIN players p ON p.id = w.player_id {member}"
            " WHERE w.week = :week ORDER BY w.points DESC, w.reached, p.id LIMIT :limit",
            {"class": class_id, "week": int(week), "limit": limit})
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


def activity_mark(store: Store) -> tuple:
    """What moves whenever a board could change: the newest point event, vote and edit (three look-ups by
    primary key). A process compares it between ticks to see other processes' votes."""
    with store.reading() as db:
        return tuple(db.conn.execute("SELECT (SELECT MAX(id) FROM point_events), (SELECT MAX(id) FROM votes),"
                                     " (SELECT MAX(id) FROM edits)").fetchone())


def points_history(store: Store, player_id: int) -> list[dict]:
    return store.query("SELECT created, points, reason, puzzle_id FROM point_events WHERE player_id = ?"
                       " ORDER BY id", (player_id,))


# ----------------------------------------------------------------------------- puzzles

PUZZLE_FIELDS = ("kind", "anchors", "supervoxels", "segments", "location", "score", "truth", "gold", "teach",
                 "tutorial", "key", "judgeable", "settled_from", "value")


def _puzzle_row(row: dict) -> dict:
    for key in ("anchors", "supervoxels", "segments", "location"):
        row[key] = json.loads(row[key])
    row["detector"] = json.loads(row["detector"]) if row["detector"] else {}
    return row


def add_puzzles(store: Store, volume: str, puzzles: list[dict]) -> list[int | None]:
    """Insert puzzles (dicts with kind, anchors, supervoxels, segments, location, score, truth, gold, teach, key).

    Any other keys of a candidate (the detector's features) are kept as JSON
    under ``detector``, so answers can be exported in the detector's format.
    A puzzle's ``value`` (what its edit gains if right) is
    :func:`game.puzzles.edit.edit_value` of its features' part sizes unless given.
    A puzzle whose ``key`` the volume has already is not inserted again (its
    id in the result is None): each question is asked once.
    """
    now = time.time()
    ids: list[int | None] = []
    with store.write() as db:
        # a puzzle with a known answer is drawn on the segmentation it is made on (its own edit may be
        # applied later): how many of the volume's edits came before it
        made_on = db.conn.execute("SELECT COUNT(*) FROM edits WHERE volume = ?", (volume,)).fetchone()[0]
        made = db.conn.execute("SELECT COALESCE(MAX(made), 0) FROM puzzles").fetchone()[0]
        for p in puzzles:
            if (p.get("gold") or p.get("tutorial")) and "edits_before" not in p:
                p = {**p, "edits_before": made_on}
            made += 1
            cur = db.conn.execute(
                "INSERT OR IGNORE INTO puzzles (id, made, volume, kind, anchors, supervoxels, segments, location,"
                " score, truth, gold, teach, tutorial, key, judgeable, settled_from, detector, created, value)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_new_puzzle_id(db), made, volume, p["kind"], json.dumps([int(a) for a in p["anchors"]]),
                 json.dumps([int(s) for s in p["supervoxels"]]), json.dumps([int(s) for s in p["segments"]]),
                 json.dumps([int(c) for c in p["location"]]), float(p["score"]),
                 None if p.get("truth") is None else int(bool(p["truth"])), int(bool(p.get("gold"))),
                 int(bool(p.get("teach"))), int(bool(p.get("tutorial"))), p.get("key"), int(p.get("judgeable", True)),
                 p.get("settled_from"), json.dumps({k: v for k, v in p.items() if k not in PUZZLE_FIELDS}) or None,
                 now, _value(p)))
            ids.append(cur.lastrowid if cur.rowcount == 1 else None)
    return ids


def set_puzzle_values(store: Store, values: dict[int, float]) -> None:
    """Store open puzzles' ``value`` (what their edit gains if right) anew: their parts changed."""
    if values:
        with store.write() as db:
            db.conn.executemany("UPDATE puzzles SET value = ? WHERE id = ? AND state = 'open'",
                                [(float(v), int(i)) for i, v in values.items()])


def _value(puzzle: dict) -> float | None:
    """A new puzzle's ``value``: given, or :func:`game.puzzles.edit.candidate_value`."""
    return float(puzzle["value"]) if puzzle.get("value") is not None else candidate_value(puzzle)


def known_answers(store: Store, volume: str) -> list[dict]:
    """The volume's answers known other than by the crowd, as candidates with ``answer``: gold and teach
    puzzles with their truth (and ``sample_weight``, kept in their detector JSON), and expert decisions
    (retired crowd puzzles without a posterior: :func:`game.crowd.votes.expert_decide` settles them).

    Practice puzzles are left out: they are chosen as the clearest examples, not at random.
    """
    rows = store.query(
        "SELECT kind, detector, truth, decision, gold FROM puzzles WHERE volume = ? AND tutorial = 0 AND"
        " ((gold = 1 AND truth IS NOT NULL) OR (gold = 0 AND state = 'retired' AND posterior IS NULL"
        " AND decision IS NOT NULL)) ORDER BY made", (volume,))
    return [{**(json.loads(r["detector"]) if r["detector"] else {}), "kind": r["kind"],
             "answer": bool(r["truth"] if r["gold"] else r["decision"])} for r in rows]


def open_crowd_puzzles(store: Store, volume: str) -> int:
    """How many crowd puzzles of a volume are open."""
    return store.scalar("SELECT COUNT(*) FROM puzzles WHERE volume = ? AND state = 'open' AND gold = 0"
                        " AND tutorial = 0", (volume,))


def puzzle_keys(store: Store, volume: str) -> set[str]:
    """The keys of a volume's puzzles, whatever their state: the questions asked already."""
    return {r["key"] for r in store.query("SELECT key FROM puzzles WHERE volume = ? AND key IS NOT NULL", (volume,))}


def puzzle(store: Store, puzzle_id: int) -> dict | None:
    rows = store.query("SELECT * FROM puzzles WHERE id = ?", (int(puzzle_id),))
    return _puzzle_row(rows[0]) if rows else None


def puzzles(store: Store, *, volume: str | None = None, state: str | None = None,
            gold: bool | None = None, tutorial: bool | None = False) -> list[dict]:
    clauses, params = [], []
    for column, value in (("volume", volume), ("state", state), ("gold", None if gold is None else int(gold)),
                          ("tutorial", None if tutorial is None else int(tutorial))):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return [_puzzle_row(r) for r in store.query(f"SELECT * FROM puzzles {where} ORDER BY made", tuple(params))]


def puzzle_count(store: Store, volume: str | None = None) -> int:
    if volume is None:
        return store.scalar("SELECT COUNT(*) FROM puzzles")
    return store.scalar("SELECT COUNT(*) FROM puzzles WHERE volume = ?", (volume,))


ORDERS = ("value", "uncertainty")  # how open puzzles are handed out: the PUZZLE_ORDER setting


def _crowd_belief(table: str = "") -> str:
    """In SQL, how likely a puzzle's edit is right by the yes/no answers of every player past the
    introduction (:meth:`game.crowd.assignment.Assignments.introduced`: a count of gold answers, right or
    wrong), whether their votes count or not: ``belief``, the detector's score moved by each such answer as
    by one careful player's (:func:`game.crowd.votes.cast_vote`), else the score.

    The hand-out order and the splits that hold merges back read this, never the consensus posterior or the
    counted votes: those move only with a vote that counts, so an observer account reading its next puzzle
    before and after a probe account's vote learned whether the probe's votes counted (whether its secret
    gold answers were right), and a helper harvested 35 of 36 secret gold answers in 4.2 minutes that way.
    Every such answer moves this alike. So accounts past the introduction whose votes do not count can
    move a puzzle up or down the order, let go the merges a split holds back (two "no" answers take a cut
    scored 0.3 below SPLIT_HOLD_BELIEF), and, through ``answers``, leave a puzzle to one holder at a time;
    they decide nothing: only counted votes do.
    """
    return f"COALESCE({table}belief, {table}score)"


def _priority_sql(min_votes: float, table: str = "", order: str = "uncertainty") -> str:
    """A puzzle's priority in SQL with ``min_votes`` written in as a literal (an index over it needs one);
    ``table``: the alias its columns are read from (``"p."``); ``order``: one of :data:`ORDERS`.

    ``value``: what the puzzle was expected to gain before anyone answered, ``score·value·(1 + min(answers,
    m)/m)``, halved for a puzzle a person may find hard to judge by looking (not ``judgeable``), with
    ``score`` the detector's probability that the edit is right, ``value`` what a right edit gains
    (:func:`game.puzzles.edit.edit_value`; 1 voxel-bit without part sizes) and ``answers`` its yes/no
    answers, so that a puzzle on its way to a decision is finished. The answers move a puzzle up, never
    down: ranked by the crowd's belief, one "no" would push a right edit back for as long as better ones
    keep coming (a saboteur's, or an honest mistake's), and on the demo the two ranked alike (the bench's
    gap closed after 2,000 votes and in all). ``uncertainty`` (the order before): ``0.4·(1 − |2p − 1|) +
    0.4·score + 0.2·min(answers, m)/m`` with ``p`` :func:`_crowd_belief`, every judgeable puzzle first.
    Both read every player's answers alike, whether they count or not (see :func:`_crowd_belief`).
    """
    m = repr(float(max(1, min_votes)))
    p = _crowd_belief(table)
    votes = f"MIN({table}answers, {m}) / {m}"
    if order == "uncertainty":
        return f"0.4 * (1.0 - ABS(2.0 * {p} - 1.0)) + 0.4 * {table}score + 0.2 * {votes}"
    if order != "value":
        raise ValueError(f"unknown puzzle order {order!r}: one of {', '.join(ORDERS)}")
    return f"{table}score * COALESCE({table}value, 1.0) * (1.0 + {votes}) * (0.5 + 0.5 * {table}judgeable)"


def _order_keys(min_votes: float, table: str, order: str, last: bool = False) -> str:
    """The hand-out order's sort keys after (gold, tutorial, state): see :func:`_priority_sql`; ``last``: from
    the end of the value order (the same index, read backwards)."""
    if last and order == "value":
        return f"({_priority_sql(min_votes, table, order)}) ASC, {table}made DESC"
    first = f"{table}judgeable DESC, " if order == "uncertainty" else ""
    return f"{first}({_priority_sql(min_votes, table, order)}) DESC, {table}made"  # ties: first made, first


def index_priorities(store: Store, min_votes: float, order: str = "uncertainty") -> None:
    """Index open puzzles in the order :func:`assignable_puzzles` hands them out, for ``min_votes`` and
    ``order`` (the PUZZLE_ORDER setting).

    With it, choosing a player's next puzzle reads the first entries of the
    index instead of scoring and sorting every open puzzle at each request
    (CPU per request with 860 open puzzles: 1.1 ms, 0.3 ms with the index).
    The index's expression holds the MIN_VOTES setting, so it is not a
    migration: the instance makes it when it opens the store, named by the
    settings and replacing one made for other values. Without it (or for
    other settings) the same query sorts: the order is the same.
    """
    # (the order over every answer: puzzles_order_* and puzzles_value_* were over the counted votes,
    # puzzles_seen_* over the share of answers)
    prefix = "puzzles_heard_" if order == "uncertainty" else "puzzles_worth_"
    # 'm': ties broken by the order of making (an index of ids, random now, replaced)
    name = prefix + "m" + re.sub(r"\W", "_", repr(float(max(1, min_votes))))
    if not store.scalar("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)):
        keys = _order_keys(min_votes, "", order)  # (checks the order before anything is dropped)
        with store.write() as db:  # puzzles_priority_*: the same order over n_votes, before counted_votes
            globs = " OR ".join(f"name GLOB 'puzzles_{p}_*'" for p in ("order", "priority", "value", "seen",
                                                                        "worth", "heard"))
            for (old,) in db.conn.execute(f"SELECT name FROM sqlite_master WHERE type = 'index' AND ({globs})"
                                          " AND name != ?", (name,)).fetchall():
                db.conn.execute(f'DROP INDEX "{old}"')
            db.conn.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON puzzles (gold, tutorial, state, {keys})')
    store.priority_index = ((float(max(1, min_votes)), order), name)


def _assignable_sql(gold: bool, min_votes: float, limit: int, index: str | None = None, skip: bool = False,
                    order: str = "uncertainty", last: bool = False) -> str:
    """:func:`assignable_puzzles`' query; ``index``: the priority index to read open puzzles off (SQLite's
    planner, not knowing that the first few entries are enough, would rather scan and sort); ``skip``: leave
    out the ids in the JSON list ``:skip``."""
    where = "" if gold else "AND p.state = 'open' AND p.volume NOT IN (SELECT volume FROM volume_state WHERE live = 0)"
    if skip:
        where += " AND p.id NOT IN (SELECT json_each.value FROM json_each(:skip))"
    indexed = f' INDEXED BY "{index}"' if index and not gold else ""
    return ("SELECT p.id, p.volume, p.kind, p.gold, p.teach, p.score, p.posterior, p.n_votes, p.answers,"
            " p.anchors,"
            " p.supervoxels, p.judgeable, p.value,"
            f" {_priority_sql(min_votes, 'p.', order)} AS priority"
            f" FROM puzzles p{indexed} WHERE p.gold = :gold AND p.tutorial = 0 {where} AND NOT EXISTS"
            " (SELECT 1 FROM votes v WHERE v.puzzle_id = p.id AND v.player_id = :player)"
            # a copy of a settled decision never measures a player who helped decide it
            " AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.puzzle_id = p.settled_from AND v.player_id = :player)"
            f" ORDER BY {_order_keys(min_votes, 'p.', order, last and not gold)} LIMIT {int(limit)}")


def assignable_puzzles(store: Store, player_id: int, *, gold: bool, min_votes: int = 3,
                       limit: int = 64, skip=(), order: str = "uncertainty", last: bool = False) -> list[dict]:
    """Puzzles the player has not answered: open ones of live volumes, or (``gold``) gold ones in any state.

    The known-answer puzzles of every volume are served, live or not: a volume
    kept out of play still measures players (one whose own gold cannot be
    balanced, say, relies on another's). Light rows for choosing among many
    (asked for on every puzzle request): id, volume, kind, gold, score,
    posterior, n_votes, answers, judgeable, value, ``anchors`` and ``supervoxels`` (to tell
    whether an edit made the puzzle moot), and ``priority`` (:func:`_priority_sql` of ``order``, the
    PUZZLE_ORDER setting: by default the most uncertain, judgeable ones first; or what each is expected to
    gain; puzzles on their way to a decision finished). The ``limit`` best (gold: any order). Open puzzles are read off
    :func:`index_priorities`' index when one was made for ``min_votes`` and ``order``
    (the same order, without sorting them all). ``skip``: ids to leave out. ``last``: open puzzles from the
    end of the value order (for a player whose votes do not count yet).
    """
    indexed = store.priority_index
    index = indexed[1] if indexed is not None and indexed[0] == (float(max(1, min_votes)), order) else None
    params = {"gold": int(gold), "player": player_id, "skip": json.dumps([int(i) for i in skip])}
    try:
        rows = store.query(_assignable_sql(gold, min_votes, limit, index, bool(skip), order, last), params)
    except sqlite3.OperationalError as exc:
        if index is None or "no such index" not in str(exc):
            raise
        store.priority_index = None  # dropped by a process started with other settings: sort instead
        rows = store.query(_assignable_sql(gold, min_votes, limit, None, bool(skip), order, last), params)
    for row in rows:
        row["anchors"], row["supervoxels"] = _id_list(row["anchors"]), _id_list(row["supervoxels"])
    return rows


def _new_puzzle_id(db) -> int:
    """A random id no puzzle has (below PUZZLE_ID_SPACE); see the ``made`` migration."""
    while True:
        candidate = secrets.randbelow(PUZZLE_ID_SPACE - 1) + 1
        if db.conn.execute("SELECT 1 FROM puzzles WHERE id = ?", (candidate,)).fetchone() is None:
            return candidate


def puzzle_stack_fields(store: Store, puzzle_id: int) -> dict:
    """A puzzle's stack as a light row needs it to be shown: ``slices``, ``key_slice`` and ``across``
    from its frame (each None without one). Read for the puzzle handed out only: reading them for every
    row of :func:`assignable_puzzles` parsed each candidate's detector JSON three times."""
    rows = store.query("SELECT json_extract(detector, '$.frame.slices') AS slices,"
                       " json_extract(detector, '$.frame.point[0]') - json_extract(detector, '$.frame.start[0]')"
                       " AS key_slice, json_extract(detector, '$.frame.across') AS across FROM puzzles WHERE id = ?",
                       (int(puzzle_id),))
    return rows[0] if rows else {"slices": None, "key_slice": None, "across": None}


@functools.lru_cache(maxsize=1 << 16)
def _id_list(text: str) -> tuple[int, ...]:
    """A JSON list of ids, parsed once per process (asked for on every puzzle request)."""
    return tuple(json.loads(text))


def settled_decisions(store: Store, volume: str, min_confidence: float) -> list[dict]:
    """A volume's crowd puzzles decided at ``min_confidence`` or more, judgeable and framed, not yet copied.

    Oldest decision first. See :mod:`game.crowd.settled`.
    """
    return [_puzzle_row(r) for r in store.query(
        "SELECT * FROM puzzles p WHERE p.volume = ? AND p.gold = 0 AND p.tutorial = 0 AND p.state = 'retired'"
        " AND p.decision IS NOT NULL AND p.confidence >= ? AND p.judgeable = 1 AND p.settled_from IS NULL"
        " AND json_extract(p.detector, '$.frame') IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM puzzles c WHERE c.settled_from = p.id) ORDER BY p.retired, p.made",
        (volume, float(min_confidence)))]


def settled_copies(store: Store, volume: str) -> list[dict]:
    """A volume's puzzles copied from settled decisions, in every role."""
    return store.query("SELECT id, kind, truth, gold, teach, tutorial, settled_from FROM puzzles"
                       " WHERE volume = ? AND settled_from IS NOT NULL ORDER BY made", (volume,))


def gold_counts(store: Store) -> dict[str, int]:
    """Secret gold puzzles per volume."""
    return {r["volume"]: r["n"] for r in store.query(
        "SELECT volume, COUNT(*) AS n FROM puzzles WHERE gold = 1 AND teach = 0 GROUP BY volume")}


# read from the index puzzles_open_splits alone (MIGRATIONS), never the puzzles' rows
_OPEN_SPLITS_SQL = ("SELECT volume, supervoxels FROM puzzles WHERE kind = 'split' AND state = 'open' AND gold = 0"
                    f" AND tutorial = 0 AND {_crowd_belief()} >= ?")


def open_split_parts(store: Store, *, min_belief: float = 0.0) -> list[tuple[str, int]]:
    """(volume, one supervoxel of the part to cut off) for every open crowd split puzzle whose cut is
    at least ``min_belief`` likely by every answer it got (:func:`_crowd_belief`: what holds merges back
    is seen by all, so it must not move with whether a vote counts)."""
    rows = store.query(_OPEN_SPLITS_SQL, (float(min_belief),))
    # the lists parsed here, once per process (asked for on every puzzle request; SQLite's JSON functions
    # parsed each twice)
    return [(r["volume"], parts[0]) for r in rows if (parts := _id_list(r["supervoxels"]))]


def merge_anchors_since(store: Store, volume: str, after: int) -> list[tuple[int, int, tuple[int, ...]]]:
    """(made, id, anchors) of the volume's open merge puzzles made after ``after`` (their ``made``: a puzzle is
    made open, and one that left 'open' never comes back)."""
    return [(r["made"], r["id"], _id_list(r["anchors"])) for r in store.query(
        "SELECT made, id, anchors FROM puzzles WHERE volume = ? AND made > ? AND kind = 'merge' AND state = 'open'",
        (volume, int(after)))]


def mark_moot(store: Store, puzzle_id: int) -> bool:
    """Retire an open puzzle that an edit settled; a puzzle retired meanwhile keeps its decision."""
    with store.write() as db:
        return db.conn.execute("UPDATE puzzles SET state = 'moot', retired = ? WHERE id = ? AND state = 'open'",
                               (time.time(), puzzle_id)).rowcount == 1


def set_puzzle_state(store: Store, puzzle_id: int, state: str, *, decision: bool | None = None,
                     posterior: float | None = None, confidence: float | None = None,
                     edit_seq: int | None = None, counted_votes: int | None = None) -> None:
    """A puzzle's state after a vote or a decision; ``counted_votes``: its yes/no votes that count, if given."""
    with store.write() as db:
        db.conn.execute(
            "UPDATE puzzles SET state = ?, decision = ?, posterior = ?, confidence = ?, edit_seq = ?,"
            " retired = CASE WHEN ? = 'open' THEN NULL ELSE ? END, counted_votes = COALESCE(?, counted_votes)"
            " WHERE id = ?",
            (state, None if decision is None else int(decision), posterior, confidence, edit_seq, state,
             time.time(), counted_votes, puzzle_id))


# ----------------------------------------------------------------------------- votes

def add_vote(store: Store, puzzle_id: int, player_id: int, answer: str, supports_edit: bool | None,
             ms: int | None, points: int, seen: bool = True, belief: float | None = None) -> int:
    """Record a vote; ``seen``: a yes or no adds to the puzzle's ``answers`` and ``supports`` and sets its
    ``belief`` (when given: the caller's, for a seen yes or no), which the hand-out order reads
    (:func:`_crowd_belief`)."""
    with store.write() as db:
        try:
            cur = db.conn.execute(
                "INSERT INTO votes (puzzle_id, player_id, answer, supports_edit, ms, points, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (puzzle_id, player_id, answer, None if supports_edit is None else int(supports_edit), ms, points,
                 time.time()))
        except sqlite3.IntegrityError as exc:
            raise ProofQuestError(f"you have already answered puzzle {puzzle_id}; ask for the next one") from exc
        backs = None if supports_edit is None or not seen else int(supports_edit)
        belief = None if backs is None or belief is None else float(belief)
        db.conn.execute("UPDATE puzzles SET n_votes = n_votes + 1, answers = answers + (? IS NOT NULL),"
                        " supports = supports + COALESCE(?, 0), belief = COALESCE(?, belief) WHERE id = ?",
                        (backs, backs, belief, puzzle_id))
        return cur.lastrowid


def _n_votes_by_id(store: Store, sql: str, ids) -> dict[int, int]:
    """``{id: n_votes}`` from ``sql`` (selecting ``id, n_votes`` with ``{marks}`` for a list of ids)."""
    found = {}
    for chunk, marks in _id_chunks(ids):
        found.update((r["id"], r["n_votes"]) for r in store.query(sql.format(marks=marks), chunk))
    return found


def open_puzzles_voted_by(store: Store, player_ids) -> dict[int, int]:
    """Open crowd puzzles with a vote by one of these players: id -> its votes so far (``n_votes``)."""
    return _n_votes_by_id(store, "SELECT DISTINCT p.id, p.n_votes FROM votes v JOIN puzzles p ON p.id = v.puzzle_id"
                                 " WHERE v.player_id IN ({marks}) AND p.state = 'open' AND p.gold = 0"
                                 " AND p.tutorial = 0", player_ids)


def open_vote_counts(store: Store, puzzle_ids) -> dict[int, int]:
    """Of these puzzles, the open ones: id -> its votes so far (``n_votes``)."""
    return _n_votes_by_id(store, "SELECT id, n_votes FROM puzzles WHERE id IN ({marks}) AND state = 'open'",
                          puzzle_ids)


def has_voted(store: Store, puzzle_id: int, player_id: int) -> bool:
    return store.scalar("SELECT 1 FROM votes WHERE puzzle_id = ? AND player_id = ?", (puzzle_id, player_id)) == 1


def puzzle_votes(store: Store, puzzle_id: int) -> list[dict]:
    return store.query("SELECT * FROM votes WHERE puzzle_id = ? ORDER BY id", (puzzle_id,))


def puzzle_ballots(store: Store, puzzle_id: int) -> list[dict]:
    """A puzzle's votes with what each counts for: player_id, answer, reliability and ``counted``
    (as :func:`standings`), oldest first; one query, asked inside every vote's transaction."""
    return store.query(f"SELECT v.player_id, v.answer, p.reliability, {_COUNTS} AS counted"
                       " FROM votes v JOIN players p ON p.id = v.player_id WHERE v.puzzle_id = ? ORDER BY v.id",
                       (puzzle_id,))


def puzzle_ballot_columns(store: Store, puzzle_id: int) -> tuple[tuple, tuple, tuple, tuple]:
    """:func:`puzzle_ballots` as four aligned columns: answers, reliabilities, ``counted`` and the voter's
    shared voice (None: their own; game.crowd.voices). What a decision reads inside every vote's
    transaction; rows of tuples, not dicts: a third of its cost."""
    with store.reading() as db:
        cursor = db.conn.cursor()
        cursor.row_factory = None
        rows = cursor.execute(
            f"SELECT v.answer, p.reliability, {_COUNTS}, p.voice FROM votes v"
            " JOIN players p ON p.id = v.player_id WHERE v.puzzle_id = ? ORDER BY v.id", (int(puzzle_id),)).fetchall()
    return tuple(zip(*rows)) if rows else ((), (), (), ())


def checked_votes(store: Store) -> list[tuple[int, int, bool, bool, bool | None, float, bool]]:
    """The yes/no answers of established players who are not suspended, on secret gold and crowd puzzles (not
    teach or practice, whose answers are shown), in one read for both checks of game.crowd.reliability:
    (player, puzzle, supports the edit, secret gold, its truth or None, the puzzle's detector score, whether
    the player's votes count)."""
    with store.reading() as db:
        cursor = db.conn.cursor()
        cursor.row_factory = None
        return [(p, q, bool(s), bool(g), None if t is None else bool(t), float(score if score is not None else 0.5),
                 bool(c)) for p, q, s, g, t, score, c in cursor.execute(
            f"SELECT v.player_id, v.puzzle_id, v.supports_edit, z.gold, CASE WHEN z.gold = 1 THEN z.truth END,"
            f" z.score, {_COUNTS} FROM votes v JOIN players p ON p.id = v.player_id JOIN puzzles z"
            " ON z.id = v.puzzle_id WHERE p.established AND NOT p.suspended AND v.supports_edit IS NOT NULL"
            " AND z.teach = 0 AND z.tutorial = 0")]


def counted_then_not_now(store: Store, puzzle_id: int, player_ids) -> bool:
    """Whether a vote of one of these players counted in the puzzle's decision and no longer would."""
    ids = sorted({int(p) for p in player_ids})
    for chunk, marks in _id_chunks(ids):
        if store.scalar(f"SELECT 1 FROM votes v JOIN players p ON p.id = v.player_id WHERE v.puzzle_id = ? AND"
                        f" v.counted = 1 AND v.player_id IN ({marks}) AND NOT ({_COUNTS}) LIMIT 1",
                        (int(puzzle_id), *chunk)):
            return True
    return False


def one_sided_players(store: Store, *, overruled: bool = False) -> set[int]:
    """Players found one-sided (whose votes do not count); with ``overruled``, also those an admin let count
    again by lifting a suspension (never checked again)."""
    return {r["id"] for r in store.query(f"SELECT id FROM players WHERE one_sided {'!= 0' if overruled else '= 1'}")}


def set_one_sided(store: Store, player_ids) -> None:
    with store.write() as db:
        for chunk, marks in _id_chunks(player_ids):
            db.conn.execute(f"UPDATE players SET one_sided = 1, voice_checked = -1 WHERE id IN ({marks})", chunk)


def voices_of(store: Store) -> dict[int, int]:
    """The players who share a voice: player -> the voice's lowest player id."""
    return {r["id"]: r["voice"] for r in store.query("SELECT id, voice FROM players WHERE voice IS NOT NULL")}


def unchecked_voices(store: Store) -> set[int]:
    """The players whose voice changed since the decisions their votes made were last checked again."""
    return {r["id"] for r in store.query("SELECT id FROM players WHERE voice IS NOT voice_checked")}


def mark_voices_checked(store: Store, player_ids) -> None:
    with store.write() as db:
        for chunk, marks in _id_chunks(player_ids):
            db.conn.execute(f"UPDATE players SET voice_checked = voice WHERE id IN ({marks})", chunk)


def set_voices(store: Store, voice_of: dict[int, int]) -> set[int]:
    """Set every player's shared voice (players not in ``voice_of``: their own); returns the players whose
    voice changed."""
    with store.write() as db:
        before = {r[0]: r[1] for r in db.conn.execute("SELECT id, voice FROM players WHERE voice IS NOT NULL")}
        changed = {p for p in set(before) | set(voice_of) if before.get(p) != voice_of.get(p)}
        db.conn.executemany("UPDATE players SET voice = ? WHERE id = ?", [(voice_of.get(p), p) for p in changed])
    return changed


def take_back_consensus_points(store: Store, puzzle_id: int) -> int:
    """Take back what a puzzle's voters were paid for agreeing with its decision (a decision undone: the next
    pays again); returns how many players lost points. Read through each voter's own points (indexed by player)."""
    voters = [r["player_id"] for r in store.query("SELECT player_id FROM votes WHERE puzzle_id = ?", (int(puzzle_id),))]
    taken = 0
    for player_id in voters:
        paid = store.scalar("SELECT COALESCE(SUM(points), 0) FROM point_events WHERE player_id = ? AND puzzle_id = ?"
                            " AND reason IN ('consensus', 'consensus undone')", (player_id, int(puzzle_id)))
        if paid:
            add_points(store, player_id, -paid, "consensus undone", puzzle_id=puzzle_id)
            taken += 1
    return taken


def decided_count(store: Store, volume: str) -> int:
    """A volume's puzzles retired with a decision (what the answers export holds)."""
    return store.scalar("SELECT COUNT(*) FROM puzzles WHERE volume = ? AND state = 'retired' AND decision IS NOT NULL",
                        (volume,))


def reopen_puzzle(store: Store, puzzle_id: int) -> None:
    """A retired crowd puzzle open again, undecided (its votes kept, none marked as counted), and the puzzles
    with a known answer copied from its decision (game.crowd.settled) withdrawn: moot, measuring nobody."""
    with store.write() as db:
        # made anew: what is worked out per puzzle made since (merges that wait for a split) sees it again
        db.conn.execute("UPDATE puzzles SET state = 'open', decision = NULL, posterior = NULL, confidence = NULL,"
                        " edit_seq = NULL, retired = NULL, made = (SELECT COALESCE(MAX(made), 0) + 1 FROM puzzles)"
                        " WHERE id = ?", (int(puzzle_id),))
        db.conn.execute("UPDATE votes SET counted = NULL WHERE puzzle_id = ?", (int(puzzle_id),))
        db.conn.execute("UPDATE puzzles SET state = 'moot', gold = 0, teach = 0, tutorial = 0 WHERE settled_from = ?",
                        (int(puzzle_id),))


def reliabilities(store: Store) -> dict[int, float]:
    """Every player's reliability that has one."""
    return {r["id"]: r["reliability"] for r in store.query("SELECT id, reliability FROM players"
                                                           " WHERE reliability IS NOT NULL")}


def decided_with(store: Store, player_ids) -> list[dict]:
    """Crowd puzzles retired on a decision these players' votes counted in, or waiting for an expert with a vote of
    theirs; newest edit first (a revert must not sit under a later edit that depends on it)."""
    ids = sorted({int(p) for p in player_ids})
    if not ids:
        return []
    found = set()
    for chunk, marks in _id_chunks(ids):
        found.update(r["puzzle_id"] for r in store.query(
            f"SELECT DISTINCT v.puzzle_id FROM votes v JOIN puzzles p ON p.id = v.puzzle_id WHERE v.player_id IN"
            f" ({marks}) AND p.gold = 0 AND p.tutorial = 0 AND ((p.state = 'retired' AND v.counted = 1)"
            " OR p.state = 'expert')",
            chunk))
    rows = []
    for chunk, marks in _id_chunks(found):
        rows += [_puzzle_row(r) for r in store.query(f"SELECT * FROM puzzles WHERE id IN ({marks})", chunk)]
    return sorted(rows, key=lambda r: (-(r["edit_seq"] if r["edit_seq"] is not None else -1), r["made"] or 0))


def mark_counted(store: Store, puzzle_id: int, counted_players) -> None:
    """Record which of a retiring puzzle's votes counted in its decision (inside the deciding transaction)."""
    counted_players = [int(p) for p in counted_players]
    with store.write() as db:
        db.conn.execute("UPDATE votes SET counted = 0 WHERE puzzle_id = ?", (puzzle_id,))
        db.conn.executemany("UPDATE votes SET counted = 1 WHERE puzzle_id = ? AND player_id = ?",
                            [(puzzle_id, p) for p in counted_players])


def counted_votes(store: Store, player_ids) -> int:
    """How many of these players' votes counted in a crowd decision."""
    ids = [int(p) for p in player_ids]
    if not ids:
        return 0
    return store.scalar(f"SELECT COUNT(*) FROM votes WHERE counted = 1 AND player_id IN ({','.join('?' * len(ids))})",
                        tuple(ids))


def records(store: Store, player_id: int | None = None) -> list[dict]:
    """Every yes/no vote that measures its player: on secret gold (with the truth) and on retired crowd puzzles.

    Rows: player_id, supports_edit, gold (1: secret gold, 0: retired crowd puzzle), truth (gold) or
    decision and confidence (crowd), and when the vote was cast.
    """
    return store.query(
        "SELECT v.player_id, v.supports_edit, p.gold, p.truth, p.decision, p.confidence, v.created FROM votes v"
        " JOIN puzzles p ON p.id = v.puzzle_id WHERE v.supports_edit IS NOT NULL AND p.tutorial = 0 AND"
        " ((p.gold = 1 AND p.teach = 0 AND p.truth IS NOT NULL) OR (p.gold = 0 AND p.state = 'retired'"
        " AND p.decision IS NOT NULL))" + (" AND v.player_id = ?" if player_id is not None else "") + " ORDER BY v.id",
        () if player_id is None else (int(player_id),))


def puzzle_state_counts(store: Store) -> dict[str, int]:
    """Crowd puzzles (neither gold nor practice) per state."""
    return {r["state"]: r["n"] for r in store.query(
        "SELECT state, COUNT(*) AS n FROM puzzles WHERE tutorial = 0 AND gold = 0 GROUP BY state")}


def puzzle_scores(store: Store) -> dict[int, float]:
    """Every puzzle's detector score (the consensus prior), by id."""
    return {r["id"]: r["score"] for r in store.query("SELECT id, score FROM puzzles")}


def settled_count(store: Store) -> int:
    """Crowd puzzles retired with a decision (the ones players' records measure agreement with)."""
    return store.scalar("SELECT COUNT(*) FROM puzzles WHERE gold = 0 AND tutorial = 0 AND state = 'retired'"
                        " AND decision IS NOT NULL")


def vote_count(store: Store) -> int:
    return store.scalar("SELECT COUNT(*) FROM votes")


def player_votes(store: Store, player_id: int) -> list[dict]:
    return store.query("SELECT v.*, p.kind, p.gold, p.teach, p.truth, p.state, p.decision, p.edit_seq, p.volume"
                       " FROM votes v JOIN puzzles p ON p.id = v.puzzle_id WHERE v.player_id = ? ORDER BY v.id",
                       (player_id,))


# ----------------------------------------------------------------------------- jobs (progress of long steps)

def set_job(store: Store, name: str, state: str, done: int = 0, total: int = 0, message: str = "") -> None:
    with store.write() as db:
        db.conn.execute("INSERT OR REPLACE INTO jobs (name, state, done, total, message, updated)"
                        " VALUES (?, ?, ?, ?, ?, ?)", (name, state, done, total, message, time.time()))


def jobs(store: Store) -> list[dict]:
    return store.query("SELECT * FROM jobs ORDER BY updated DESC")


# ----------------------------------------------------------------------------- classes, students, rounds

def create_class(store: Store, teacher_id: int, name: str) -> dict:
    with store.write() as db:
        cur = db.conn.execute("INSERT INTO classes (teacher_id, name, created) VALUES (?, ?, ?)",
                              (teacher_id, name, time.time()))
        return class_(store, cur.lastrowid)


_CLASS_ROW = ("SELECT c.*, t.username AS teacher,"
              " (SELECT COUNT(*) FROM class_members m WHERE m.class_id = c.id AND m.removed IS NULL) AS students,"
              " (SELECT COUNT(*) FROM rounds r WHERE r.class_id = c.id) AS rounds"
              " FROM classes c JOIN players t ON t.id = c.teacher_id")


def class_(store: Store, class_id: int) -> dict | None:
    rows = store.query(f"{_CLASS_ROW} WHERE c.id = ?", (class_id,))
    return rows[0] if rows else None


def classes(store: Store, *, teacher_id: int | None = None) -> list[dict]:
    """Every class (newest first), or one teacher's."""
    if teacher_id is None:
        return store.query(f"{_CLASS_ROW} ORDER BY c.id DESC")
    return store.query(f"{_CLASS_ROW} WHERE c.teacher_id = ? ORDER BY c.id DESC", (teacher_id,))


def open_join_code(store: Store, class_id: int, code: str, expires: float) -> dict:
    """Give a class a new join code, closing the one it had; a code used before (by any class) raises."""
    now = time.time()
    with store.write() as db:
        db.conn.execute("UPDATE join_codes SET closed = ? WHERE class_id = ? AND closed IS NULL", (now, class_id))
        try:
            db.conn.execute("INSERT INTO join_codes (code, class_id, created, expires) VALUES (?, ?, ?, ?)",
                            (code, class_id, now, expires))
        except sqlite3.IntegrityError as exc:
            raise ProofQuestError(f"the join code {code} was used before") from exc
    return join_code(store, code)


def close_join_code(store: Store, class_id: int) -> int:
    """Close a class's open code; how many were closed (0 or 1)."""
    with store.write() as db:
        return db.conn.execute("UPDATE join_codes SET closed = ? WHERE class_id = ? AND closed IS NULL",
                               (time.time(), class_id)).rowcount


def join_code(store: Store, code: str) -> dict | None:
    rows = store.query("SELECT * FROM join_codes WHERE code = ?", (code,))
    return rows[0] if rows else None


def current_join_code(store: Store, class_id: int) -> dict | None:
    """The class's code that is not closed (it may have expired), or None."""
    rows = store.query("SELECT * FROM join_codes WHERE class_id = ? AND closed IS NULL ORDER BY created DESC"
                       " LIMIT 1", (class_id,))
    return rows[0] if rows else None


def add_member(store: Store, class_id: int, player_id: int, nickname: str, device: str) -> dict:
    with store.write() as db:
        try:
            db.conn.execute("INSERT INTO class_members (player_id, class_id, nickname, device, joined)"
                            " VALUES (?, ?, ?, ?, ?)", (player_id, class_id, nickname, device, time.time()))
        except sqlite3.IntegrityError as exc:
            raise ProofQuestError(f"the nickname {nickname!r} is taken in this class; choose another") from exc
        return member(store, player_id)


def member(store: Store, player_id: int) -> dict | None:
    """A player's place in a class (removed ones too), or None for a player who is not a student."""
    rows = store.query("SELECT * FROM class_members WHERE player_id = ?", (player_id,))
    return rows[0] if rows else None


def member_by_device(store: Store, class_id: int, device: str) -> dict | None:
    """The class's student (not removed) who joined from this device, the latest if several."""
    rows = store.query("SELECT * FROM class_members WHERE class_id = ? AND device = ? AND removed IS NULL"
                       " ORDER BY joined DESC LIMIT 1", (class_id, device))
    return rows[0] if rows else None


def members(store: Store, class_id: int, *, removed: bool = False) -> list[dict]:
    """A class's students in the order they joined (with ``removed``, also those the teacher removed)."""
    gone = "" if removed else "AND m.removed IS NULL"
    return store.query("SELECT m.*, p.points, p.best_streak FROM class_members m JOIN players p ON p.id = m.player_id"
                       f" WHERE m.class_id = ? {gone} ORDER BY m.joined, m.player_id", (class_id,))


def rename_member(store: Store, class_id: int, player_id: int, nickname: str) -> dict:
    with store.write() as db:
        try:
            cur = db.conn.execute("UPDATE class_members SET nickname = ? WHERE class_id = ? AND player_id = ?"
                                  " AND removed IS NULL", (nickname, class_id, player_id))
        except sqlite3.IntegrityError as exc:
            raise ProofQuestError(f"the nickname {nickname!r} is taken in this class; choose another") from exc
        if cur.rowcount == 0:
            raise ProofQuestError(f"no student {player_id} in this class")
    return member(store, player_id)


def remove_member(store: Store, class_id: int, player_id: int) -> None:
    """Take a student off the class (their answers stay, and stay counted)."""
    with store.write() as db:
        cur = db.conn.execute("UPDATE class_members SET removed = ? WHERE class_id = ? AND player_id = ?"
                              " AND removed IS NULL", (time.time(), class_id, player_id))
        if cur.rowcount == 0:
            raise ProofQuestError(f"no student {player_id} in this class")


def start_round(store: Store, class_id: int, puzzle_set: str, seconds: int) -> dict:
    """Start a timed round; refused while the class has one running."""
    now = time.time()
    with store.write() as db:
        running = db.conn.execute("SELECT id, ends FROM rounds WHERE class_id = ? AND ended IS NULL AND ends > ?",
                                  (class_id, now)).fetchone()
        if running:
            raise ProofQuestError(f"round {running['id']} is still running ({running['ends'] - now:.0f} s left);"
                                  " end it first")
        cur = db.conn.execute("INSERT INTO rounds (class_id, puzzle_set, seconds, started, ends)"
                              " VALUES (?, ?, ?, ?, ?)", (class_id, puzzle_set, seconds, now, now + seconds))
        return round_(store, cur.lastrowid)


def end_round(store: Store, round_id: int) -> dict:
    """End a running round now (a round past its time ends at its time)."""
    now = time.time()
    with store.write() as db:
        cur = db.conn.execute("UPDATE rounds SET ended = MIN(ends, ?) WHERE id = ? AND ended IS NULL", (now, round_id))
        if cur.rowcount == 0:
            raise ProofQuestError(f"round {round_id} has already ended")
    return round_(store, round_id)


def finish_due_rounds(store: Store) -> list[dict]:
    """Mark every round whose time is up as ended; the rounds this call ended."""
    now = time.time()
    if not store.scalar("SELECT 1 FROM rounds WHERE ended IS NULL AND ends <= ? LIMIT 1", (now,)):
        return []  # asked often (the class boards' loop): a read, and the writer only when a round is due
    with store.write() as db:
        due = [r["id"] for r in db.conn.execute("SELECT id FROM rounds WHERE ended IS NULL AND ends <= ?", (now,))]
        db.conn.executemany("UPDATE rounds SET ended = ends WHERE id = ?", [(i,) for i in due])
    return [round_(store, i) for i in due]


def round_(store: Store, round_id: int) -> dict | None:
    rows = store.query("SELECT * FROM rounds WHERE id = ?", (round_id,))
    return rows[0] if rows else None


def rounds(store: Store, class_id: int) -> list[dict]:
    """A class's rounds, newest first."""
    return store.query("SELECT * FROM rounds WHERE class_id = ? ORDER BY started DESC, id DESC", (class_id,))


def latest_round(store: Store, class_id: int) -> dict | None:
    rows = store.query("SELECT * FROM rounds WHERE class_id = ? ORDER BY started DESC, id DESC LIMIT 1", (class_id,))
    return rows[0] if rows else None


def class_votes(store: Store, class_id: int, start: float, until: float) -> list[dict]:
    """The votes of a class's students (removed ones too) cast in [start, until], oldest first, with their
    puzzle's kind, gold flag, truth and outcome and the student's nickname."""
    return store.query(
        "SELECT v.id, v.puzzle_id, v.player_id, v.answer, v.supports_edit, v.ms, v.points, v.created,"
        " m.nickname, m.removed, p.kind, p.gold, p.teach, p.truth, p.state, p.decision, p.edit_seq"
        " FROM class_members m JOIN votes v ON v.player_id = m.player_id JOIN puzzles p ON p.id = v.puzzle_id"
        " WHERE m.class_id = ? AND v.created >= ? AND v.created <= ? ORDER BY v.created, v.id",
        (class_id, start, until))


def class_points(store: Store, class_id: int, start: float, until: float) -> dict[int, dict]:
    """Per student of the class: points earned in [start, until] and when they last scored."""
    rows = store.query(
        "SELECT e.player_id, SUM(e.points) AS points, MAX(e.created) AS reached FROM class_members m"
        " JOIN point_events e ON e.player_id = m.player_id"
        " WHERE m.class_id = ? AND e.created >= ? AND e.created <= ? GROUP BY e.player_id",
        (class_id, start, until))
    return {r["player_id"]: r for r in rows}


def class_edit_count(store: Store, class_id: int, start: float = 0.0, until: float = float("inf")) -> int:
    """Edits made in [start, until] that the class's students helped decide (each edit once)."""
    return store.scalar(
        "SELECT COUNT(DISTINCT c.edit_id) FROM class_members m JOIN edit_credits c ON c.player_id = m.player_id"
        " JOIN edits e ON e.id = c.edit_id WHERE m.class_id = ? AND e.created >= ? AND e.created <= ?",
        (class_id, start, min(until, 1e18)))


def credited_edits(store: Store, player_id: int) -> list[dict]:
    """The edits a player voted for that the crowd applied (whether their vote counted or not), oldest first,
    with their puzzle's kind and truth."""
    return store.query(
        "SELECT e.id, e.volume, e.seq, e.kind, e.puzzle_id, e.created, p.truth"
        " FROM edit_credits c JOIN edits e ON e.id = c.edit_id LEFT JOIN puzzles p ON p.id = e.puzzle_id"
        " WHERE c.player_id = ? ORDER BY e.id", (player_id,))
# ----------------------------------------------------------------------------- volumes in play

def live_volumes(store: Store) -> dict[str, bool]:
    """Volumes with an explicit live flag (a volume not listed is live)."""
    return {r["volume"]: bool(r["live"]) for r in store.query("SELECT volume, live FROM volume_state")}


def set_live(store: Store, volume: str, live: bool) -> None:
    """Whether the game hands out puzzles of ``volume``."""
    with store.write() as db:
        db.conn.execute("INSERT INTO volume_state (volume, live, updated) VALUES (?, ?, ?)"
                        " ON CONFLICT (volume) DO UPDATE SET live = excluded.live, updated = excluded.updated",
                        (volume, int(bool(live)), time.time()))


def set_waiting(store: Store, volume: str, waiting: int) -> None:
    """How many candidates of ``volume`` wait for room in its pool (``POOL_OPEN``), as of its last whole scan."""
    with store.write() as db:
        db.conn.execute("INSERT INTO volume_state (volume, live, updated, waiting) VALUES (?, 1, ?, ?)"
                        " ON CONFLICT (volume) DO UPDATE SET waiting = excluded.waiting, updated = excluded.updated",
                        (volume, time.time(), int(waiting)))


def waiting_candidates(store: Store, volume: str) -> int:
    """:func:`set_waiting`'s count (0 for a volume never capped)."""
    return store.scalar("SELECT waiting FROM volume_state WHERE volume = ?", (volume,)) or 0


def forget_volume(store: Store, volume: str) -> None:
    """Drop every row about a volume: its puzzles and their votes, its log, its live flag."""
    with store.write() as db:
        db.conn.execute("DELETE FROM votes WHERE puzzle_id IN (SELECT id FROM puzzles WHERE volume = ?)", (volume,))
        affected = db.conn.execute(
            "SELECT DISTINCT player_id, pq_week(created) FROM point_events"
            " WHERE puzzle_id IN (SELECT id FROM puzzles WHERE volume = ?)", (volume,)).fetchall()
        db.conn.execute("DELETE FROM point_events WHERE puzzle_id IN (SELECT id FROM puzzles WHERE volume = ?)",
                        (volume,))
        for player, week in affected:  # those weeks' sums again, without the events just dropped
            start = week_start(week)
            points, reached = db.conn.execute(
                "SELECT SUM(points), MAX(created) FROM point_events WHERE player_id = ? AND created >= ?"
                " AND created < ?", (player, start, start + WEEK_SECONDS)).fetchone()
            if points is None:
                db.conn.execute("DELETE FROM week_points WHERE week = ? AND player_id = ?", (week, player))
            else:
                db.conn.execute("UPDATE week_points SET points = ?, reached = ? WHERE week = ? AND player_id = ?",
                                (points, reached, week, player))
        for table in ("puzzles", "edits", "volume_state"):
            db.conn.execute(f"DELETE FROM {table} WHERE volume = ?", (volume,))


def puzzle_counts(store: Store) -> dict[str, dict[str, int]]:
    """Per volume: crowd puzzles per state, and the gold and practice puzzles."""
    out: dict[str, dict[str, int]] = {}
    for r in store.query("SELECT volume, CASE WHEN tutorial THEN 'practice' WHEN gold THEN 'gold' ELSE state END"
                         " AS bucket, COUNT(*) AS n FROM puzzles GROUP BY volume, bucket"):
        out.setdefault(r["volume"], {})[r["bucket"]] = r["n"]
    return out


# ----------------------------------------------------------------------------- admin reports

def edit_log(store: Store, volume: str) -> list[dict]:
    """A volume's log, each edit with its puzzle's decision (posterior, confidence, votes) when it had one."""
    rows = store.query(
        "SELECT e.seq, e.kind, e.source, e.target, e.undoes, e.author, e.puzzle_id, e.provenance, e.created,"
        " json_array_length(e.supervoxels) AS n_supervoxels, p.kind AS puzzle_kind, p.posterior, p.confidence,"
        " p.n_votes, p.gold, p.tutorial, p.location FROM edits e LEFT JOIN puzzles p ON p.id = e.puzzle_id"
        " WHERE e.volume = ? ORDER BY e.seq", (volume,))
    for row in rows:
        row["provenance"] = json.loads(row["provenance"]) if row["provenance"] else {}
        row["location"] = json.loads(row["location"]) if row["location"] else None
    return rows


def player_activity(store: Store, *, fast_ms: int) -> list[dict]:
    """Per player, what an admin looks at: answers, secret gold record, pace, and accounts from the same address.

    ``fast`` counts answers given in under ``fast_ms`` milliseconds.
    """
    return store.query(
        "SELECT p.id, p.username, p.is_guest, p.role, p.points, p.reliability, p.established, p.suspended,"
        " p.one_sided, p.created,"
        " COUNT(v.id) AS answers,"
        " COALESCE(SUM(v.answer = 'yes'), 0) AS yes, COALESCE(SUM(v.answer = 'no'), 0) AS no,"
        " COALESCE(SUM(v.answer = 'unsure'), 0) AS unsure,"
        " COALESCE(SUM(v.ms IS NOT NULL AND v.ms < ?), 0) AS fast,"
        f" COALESCE(SUM({_SECRET_GOLD_ANSWER}), 0)"
        " AS gold_answers,"
        " COALESCE(SUM(q.gold AND NOT q.teach AND q.truth IS NOT NULL AND v.supports_edit = q.truth), 0) AS gold_right,"
        " COUNT(DISTINCT date(v.created, 'unixepoch')) AS active_days, MIN(v.created) AS first_answer,"
        " MAX(v.created) AS last_answer,"
        " (SELECT COUNT(*) FROM players o WHERE o.created_address = p.created_address) AS same_address"
        " FROM players p LEFT JOIN votes v ON v.player_id = p.id LEFT JOIN puzzles q ON q.id = v.puzzle_id"
        " GROUP BY p.id ORDER BY answers DESC, p.id", (int(fast_ms),))


def daily_votes(store: Store, volume: str) -> list[dict]:
    """Per day (UTC) for one volume: votes, and how many yes/no votes on decided puzzles agreed with the decision."""
    return store.query(
        "SELECT date(v.created, 'unixepoch') AS day, COUNT(*) AS votes,"
        " COALESCE(SUM(v.supports_edit IS NOT NULL AND p.decision IS NOT NULL), 0) AS decided,"
        " COALESCE(SUM(v.supports_edit = p.decision), 0) AS agreed"
        " FROM votes v JOIN puzzles p ON p.id = v.puzzle_id WHERE p.volume = ? AND p.tutorial = 0"
        " GROUP BY day ORDER BY day", (volume,))


# ----------------------------------------------------------------------------- exports (rows, streamed)

EXPORT_QUERIES = {
    "votes": ("SELECT v.id, p.volume, v.puzzle_id, p.kind AS puzzle_kind, v.player_id, pl.username,"
              " v.answer, v.supports_edit, v.ms, v.points, v.counted, pl.suspended AS player_suspended, p.gold,"
              " datetime(v.created, 'unixepoch') AS created"
              " FROM votes v JOIN puzzles p ON p.id = v.puzzle_id JOIN players pl ON pl.id = v.player_id"
              " WHERE p.volume = :volume ORDER BY v.id"),
    "edits": ("SELECT seq, kind, source, target, undoes, supervoxels, author, puzzle_id, provenance,"
              " datetime(created, 'unixepoch') AS created FROM edits WHERE volume = :volume ORDER BY seq"),
    "puzzles": ("SELECT id, volume, kind, state, decision, posterior, confidence, n_votes, score, truth, gold,"
                " tutorial, anchors, supervoxels, segments, location, edit_seq,"
                " datetime(created, 'unixepoch') AS created, datetime(retired, 'unixepoch') AS retired"
                " FROM puzzles WHERE volume = :volume ORDER BY made"),
}


def export_rows(store: Store, what: str, volume: str) -> Iterator[dict]:
    """The rows of one table export (votes, edits or puzzles of a volume), read lazily by sqlite-utils."""
    if what not in EXPORT_QUERIES:
        raise ProofQuestError(f"cannot export {what!r} as rows; choose one of {', '.join(EXPORT_QUERIES)}")
    with store.reading() as db:
        yield from db.query(EXPORT_QUERIES[what], {"volume": volume})
