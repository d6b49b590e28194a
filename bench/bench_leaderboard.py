"""The weekly board's cost as the week's point events grow, beside summing those events as it used to.

    python bench/bench_leaderboard.py [--events 20000,200000,1000000] [--players 2000] [--repeat 5]

A store with ``--players`` players who scored this week; point events are
added spread over the week's first days, and each player's week sum kept in
``week_points`` as ``add_points`` keeps it (built here by the upgrade's own
query, which sums the events once). For each size it times
:func:`game.app.store.leaderboard` for this week (one row per player who
scored) and, in the same run, the query it replaced: the sum over the last
seven days' point events, grouped by player. The broadcaster computes the
board every ``LEADERBOARD_INTERVAL`` while anyone watches, on the event loop.
Median of ``--repeat`` runs each; the last line printed is JSON.

Measured 2026-11-30 on 2 shared cores (a fresh-clone test run beside it), 2,000 players: the old query
took 11.2, 225 and 1,540 ms at 20,000, 200,000 and 1,000,000 events; the week's rows 0.03 ms at each (the
index on week and points gives the top 20 without a sort). Both give the same board for events since Monday.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from game.app import store as st  # noqa: E402

OLD_WEEK_QUERY = (  # the weekly board before week_points: the sum over the last seven days' events
    "SELECT p.id, p.username, p.is_guest, SUM(e.points) AS points, MAX(e.created) AS reached"
    " FROM point_events e JOIN players p ON p.id = e.player_id LEFT JOIN class_members m ON m.player_id = p.id"
    " WHERE e.created >= ? GROUP BY p.id ORDER BY points DESC, reached, p.id LIMIT 20")


def timed(call, repeat: int) -> float:
    call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", default="20000,200000,1000000")
    parser.add_argument("--players", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(0)
    store = st.Store(Path(tempfile.mkdtemp(prefix="pq-bench-board-")) / "pq.sqlite")
    now = time.time()
    monday = st.week_start(st.week_of(now))
    with store.write() as db:
        db.conn.executemany("INSERT INTO players (username, created) VALUES (?, ?)",
                            [(f"p{i}", now) for i in range(args.players)])
    ids = [r["id"] for r in store.query("SELECT id FROM players")]
    rows, added = [], 0
    for target in (int(n) for n in args.events.split(",")):
        with store.write() as db:
            db.conn.executemany(
                "INSERT INTO point_events (player_id, points, reason, created) VALUES (?, ?, 'vote', ?)",
                [(rng.choice(ids), rng.choice((5, 10, 20)), rng.uniform(monday, now)) for _ in range(target - added)])
            db.conn.execute("UPDATE players SET points = (SELECT COALESCE(SUM(points), 0) FROM point_events e"
                            " WHERE e.player_id = players.id)")
            db.conn.execute("DELETE FROM week_points")
            db.conn.execute("INSERT INTO week_points (week, player_id, points, reached) SELECT pq_week(created),"
                            " player_id, SUM(points), MAX(created) FROM point_events GROUP BY 1, 2")
        added = target
        week = st.week_of(now)
        old = timed(lambda: store.query(OLD_WEEK_QUERY, (now - st.WEEK_SECONDS,)), args.repeat)
        new = timed(lambda: st.leaderboard(store, week=week), args.repeat)
        all_time = timed(lambda: st.leaderboard(store), args.repeat)
        same = [r["id"] for r in store.query(OLD_WEEK_QUERY, (monday,))] == \
            [r["id"] for r in st.leaderboard(store, week=week)]
        rows.append({"events": target, "old_ms": round(old, 2), "week_points_ms": round(new, 2),
                     "speed_up": round(old / new, 1), "all_time_ms": round(all_time, 2),
                     "same_board_since_monday": same})
        print(rows[-1], flush=True)
    print(json.dumps({"players": args.players, "sizes": rows}))


if __name__ == "__main__":
    main()
