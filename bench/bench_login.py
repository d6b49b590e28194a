"""Log-in: does the time tell which usernames exist, and how many guesses get through before throttling?

1. Median time of a failed log-in for a known username (wrong password) and for
   an unknown one, rate limits off (Flask's test client, the real password hash).
2. With the default limits: wrong passwords for one username from one address,
   sent as fast as they are answered, until ``--attempts``; and the same number
   of log-ins over as many usernames from one address (password spraying).
   Counts the ones answered (400) before they are refused (429).

    python bench/bench_login.py [--rounds 30] [--attempts 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]


def app_over(home: Path, **config):
    from game.app import players
    from game.app.instance import Instance
    from game.app.settings import load_settings
    from game.web import create_app
    inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
    if not inst.store.query("SELECT 1 FROM players WHERE username = 'known'"):
        players.register(inst.store, "known", "the right password")
    return create_app({"TESTING": True, **config}, instance=inst)


def log_in(client, username: str, password: str) -> tuple[int, float, str]:
    token = client.get("/auth/csrf").get_json()["csrf_token"]
    start = time.perf_counter()
    reply = client.post("/auth/login", json={"username": username, "password": password},
                        headers={"X-CSRFToken": token})
    return reply.status_code, time.perf_counter() - start, (reply.get_json() or {}).get("error", "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="log-ins timed per kind")
    parser.add_argument("--attempts", type=int, default=200, help="guesses sent in the throttling runs")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-login-"))

    app = app_over(home, RATE_LIMITS_ENABLED=False)
    client = app.test_client()
    log_in(client, "nobody", "warm-up")  # the first unknown user also makes the stand-in hash
    times = {"known user, wrong password": [], "unknown user": []}
    answers = {kind: set() for kind in times}
    for i in range(args.rounds):
        for kind, username in (("known user, wrong password", "known"), ("unknown user", f"nobody{i}")):
            status, seconds, error = log_in(client, username, "a wrong password")
            times[kind].append(seconds)
            answers[kind].add((status, error))
    for kind, values in times.items():
        print(f"{kind:28s} median {1000 * statistics.median(values):6.1f} ms"
              f"  (p10 {1000 * sorted(values)[len(values) // 10]:.1f}, p90 {1000 * sorted(values)[9 * len(values) // 10]:.1f})"
              f"  over {len(values)}")
    ratio = statistics.median(times["unknown user"]) / statistics.median(times["known user, wrong password"])
    print(f"unknown / known median time: {ratio:.2f}; answers: {answers}")

    settings = app.config["PROOFQUEST"]
    for label, usernames in (("one username", ["known"] * args.attempts),
                             ("password spraying", [f"user{i}" for i in range(args.attempts)])):
        app = app_over(home, RATE_LIMITS_ENABLED=True)
        client = app.test_client()
        answered, first_refusal, start = 0, None, time.perf_counter()
        for i, username in enumerate(usernames):
            status, _, _ = log_in(client, username, f"guess {i}")
            if status == 400:
                answered += 1
            elif status == 429 and first_refusal is None:
                first_refusal = i
        elapsed = time.perf_counter() - start
        print(f"{label}: {args.attempts} wrong passwords from one address in {elapsed:.1f} s, {answered} answered,"
              f" the first refused after {first_refusal} (limits: failures {settings.get('RATE_LIMIT_LOGIN_FAILURES', 'none')}"
              f" per username and address, all log-ins {settings.get('RATE_LIMIT_LOGIN', 'none')} per address)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
