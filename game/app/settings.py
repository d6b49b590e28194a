"""Settings as data: one table of (name, default, help), overridable by environment.

Every setting can be overridden by an environment variable named
``PROOFQUEST_<NAME>``; the web app also takes a test dict. ``docs/SETTINGS.md``
is generated from this table (``python run.py settings --markdown``) and a test
checks that it is current.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from game.errors import ProofQuestError

ENV_PREFIX = "PROOFQUEST_"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str


def _int_triple(text: str) -> tuple[int, int, int]:
    parts = [p for p in str(text).replace("x", ",").split(",") if p.strip()]
    if len(parts) != 3:
        raise ValueError(f"expected three integers Z,Y,X, got {text!r}")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {text!r}")
        return text
    return parse


def _bool(text: str) -> bool:
    return str(text).strip().lower() in {"1", "true", "yes", "on"}


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected a probability between 0 and 1, got {text!r}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"expected a whole number of at least 0, got {text!r}")
    return value


def _slack(text: str) -> float:
    value = float(text)
    if not 0 < value < 0.25:
        raise ValueError(f"expected a share above 0 and below 0.25, got {text!r}")
    return value


def _rate_limit(text: str) -> str:
    from limits import parse_many
    parse_many(text)  # raises ValueError with what is wrong
    return text


SETTINGS: tuple[Setting, ...] = (
    Setting("HOME", "instance", "Instance folder: database, volume store, image cache, secret key.", str),
    Setting("DEMO_NAME", "demo", "Name of the bundled demo volume.", str),
    Setting("DEMO_SHAPE", (64, 256, 256), "Size Z,Y,X of the generated demo volume.", _int_triple),
    Setting("DEMO_SEED", 0, "Random seed of the generated demo volume.", int),
    Setting("DEMO_BOUNDARY", "filter", "Boundary map behind the demo's initial segmentation: 'filter' (a "
            "classical membrane filter, which leaves errors to proofread) or 'network' (the shipped boundary "
            "network).", _choice("filter", "network")),
    Setting("DEMO_ANISOTROPIC", "off", "Supervoxels of the demo: 'off' floods it in 3D, 'on' section by section, "
            "'auto' as ANISOTROPY_RATIO says (its 30 nm sections would make it 'on'). Its neurites run along z and a "
            "3D flood follows them: at threshold 0.5 adapted Rand error 0.140 against 0.146 section by section "
            "(bench/bench_anisotropic.py), and its puzzles and figures were measured that way.",
            _choice("auto", "on", "off")),
    Setting("AGGLOMERATION_THRESHOLD", 0.5, "Mean boundary (0..1) below which supervoxels are merged "
            "into the initial segmentation.", float),
    Setting("ANISOTROPY_RATIO", 3.0, "Voxel size in z over the in-plane one from which a volume is treated as serial "
            "sections: supervoxels made section by section (2D watershed) and contacts across sections linked by "
            "how much the two profiles overlap, not by the boundary alone. A huge value keeps every volume on the "
            "3D path; `agglomerate --anisotropic on|off` decides for one volume.", float),
    Setting("FOLD_MAX_VOXELS", 32, "Segments of fewer voxels are folded into the neighbour they touch through the "
            "faintest boundary when a segmentation is made: nothing a player could judge on screen (under 32 it "
            "never made the demo or fibsem-gala worse; under 64 it did).", int),
    Setting("BOUNDARY_MODEL", "models/boundary_unet.pt", "Weights of the boundary network (path relative "
            "to the project folder, or absolute).", str),
    Setting("SCORE_MODEL", "models/edit_score.json", "The edit score: P(a proposed edit is correct) from the "
            "region graph, one small model per candidate kind (game.detection.score); the consensus prior. A missing "
            "file scores by the boundary alone.", str),
    Setting("DETECTOR_MODEL", "models/detector.pt", "Weights of the CNN detector: where a volume has an image, its "
            "score of each contact merge may be stacked with the edit score, when the volume's known answers say it "
            "helps. A missing file leaves it out.", str),
    Setting("MAX_UPLOAD_MB", 64, "Largest accepted upload (a volume imported from the admin page), in MiB.", int),
    # --- consensus: when a puzzle retires, and how much each vote and the detector count (game.crowd.consensus)
    Setting("MIN_VOTES", 3, "Counted yes/no votes a puzzle needs before it may retire with its edit applied.", int),
    Setting("MIN_VOTES_TO_REJECT", 0, "Counted yes/no votes a puzzle needs before it may retire with the "
            "segmentation left as it is (RETIRE_CONFIDENCE still applies); 0: as MIN_VOTES. 2 cut votes per retired "
            "puzzle from 5.3 to 4.3 on the demo but lost correct joins (true VI gap closed 60% -> 49%, "
            "bench/bench_simulate.py).", int),
    Setting("MAX_VOTES", 9, "Answers (unsure included) after which an undecided puzzle goes to the expert queue.",
            int),
    Setting("RETIRE_CONFIDENCE", 0.9, "Posterior probability the winning answer needs to retire a puzzle.", float),
    Setting("APPLY_CONFIDENCE", 0.97, "Posterior probability that a puzzle's edit is correct needed to apply it: "
            "higher than RETIRE_CONFIDENCE, because a wrong edit (a false merge above all) damages the segmentation "
            "while a wrongly kept one only leaves it as it was.", float),
    Setting("BIG_EDIT_STAKE", 0.005, "An edit that would move at least this share of the segmentation's "
            "same-segment voxel pairs (2·|A|·|B| / Σ|segment|², about what it can change the adapted Rand error "
            "by) is big.", float),
    Setting("BIG_APPLY_CONFIDENCE", 0.995, "Posterior probability needed to apply a big edit (see "
            "BIG_EDIT_STAKE): one wrong split of a large neuron can undo every small fix a crowd made.", float),
    Setting("BIG_APPLY_AGREEMENT", 0.667, "Share of the counted votes' weight (each vote weighs what it adds to the "
            "posterior) that must support a big edit for it to be applied: a big edit whose posterior passes "
            "BIG_APPLY_CONFIDENCE without it goes to the expert queue as contested (the posterior takes voters as "
            "independent, so a divided crowd's many votes pass it: 11 yes against 8 no applied a merge that "
            "worsened ARE by 0.016). Rejections need no agreement. 0: off. In 12 paired demo runs (bench/bench_simulate.py, "
            "crowd 0.8, seeds 0-3) it fired once, on a correct merge (agreement 0.73; an expert would apply it); "
            "applied big merges had agreement 0.72-1.0, and the one harmful big merge seen was unanimous (7 of 7), "
            "which no agreement rule stops. At 0.75 a crowd of accuracy 0.8, whose expected agreement on a right "
            "edit is 0.8, sent right big merges to the experts at 0.72-0.73 (one of them a fibsem-gala run's "
            "main gain, 7 yes against 3 no); two to one (0.667) still stops the 11-against-8 merge (0.58).", _probability),
    Setting("BIG_RELIABILITY_CAP", 0.8, "On a big edit each counted vote weighs at most what a vote of this "
            "reliability adds, for the edit and against it (posterior and agreement): a reliability is earned on the "
            "past, and a few accounts that played honestly to a high one (sleepers: 0.95 after 36 right gold "
            "answers) outweighed honest voters (about 0.77) on the edits they chose. bench/bench_attack.py "
            "--sleeper, 40 wrong big edits of demo0, 5 or 10 honest voters: uncapped, 3 sleepers voting first got "
            "60% of them applied and 5 got 98% (in random order with the honest votes 5-10% and 20-45%); at 0.8, "
            "0% and 8-10% (0% and 0-8%). The crowd's runs kept their figures (bench/bench_simulate.py demo0, "
            "crowd 0.8, seeds 0-2: true ARE gap closed 86% -> 89%, VI 67% -> 68%, wrong decisions 0.7% -> 0.9%, "
            "votes per retired puzzle 4.6 -> 4.9, one run on a loaded machine at 6.3 on small puzzles as on big "
            "ones; a big puzzle's votes 0.95 -> 1.02 times a small one's). RELIABILITY_CEILING: off.", float),
    Setting("BIG_MAX_VOTES", 15, "Answers after which an undecided big edit goes to the expert queue "
            "(MAX_VOTES for the others): big edits are worth more of the crowd's time.", int),
    Setting("PRIOR_WEIGHT", 0.5, "Multiplier on the detector's log-odds in the consensus prior: 0 ignores the "
            "detector, 1 trusts its score as a calibrated probability. 0.5 as measured (bench/bench_prior_weight.py, "
            "held-out volumes, a crowd at 80%): 1 saves 3% of the votes but applies 1.7 times the wrong edits, twice "
            "on volumes without known answers.", float),
    Setting("RELIABILITY_PRIOR_CORRECT", 2.0, "Beta prior pseudo-count of correct answers in every player's "
            "record.", float),
    Setting("RELIABILITY_PRIOR_WRONG", 2.0, "Beta prior pseudo-count of wrong answers (with the above: a player "
            "without a record stands at 2 / 4 = 0.5, a vote worth nothing).", float),
    Setting("RELIABILITY_FLOOR", 0.5, "Lowest reliability; 0.5 gives a vote no weight, and nothing lower is "
            "allowed so that no player's votes count reversed.", float),
    Setting("RELIABILITY_CEILING", 0.98, "Highest reliability: caps the odds one vote can give (49:1).", float),
    Setting("ESTABLISHED_GOLD_ANSWERS", 20, "Secret gold puzzles a player must have answered (yes or no) before "
            "their votes count in consensus: weight is earned by a record, never by an account existing. Until then "
            "the player is handed known-answer puzzles (GOLD_SHARE_NEW), whatever their standing: what a player is "
            "handed follows this count, right or wrong, never the standing (handed crowd puzzles once established, "
            "a throwaway account could answer one gold puzzle and see from its next puzzles whether the answer was "
            "right: an attack harvested all 36 secret gold answers of the demo so, with about 130 guests, and "
            "forced edits with 6 more). 20 is past the 13 answers (median) an honest player at 80% needed at 5; a vote "
            "that counts shows in decisions, which another account can watch, so fewer answers before any vote "
            "counts make such probing cheap (at 20, a guessing account passes with 0.6% probability).", int),
    Setting("ESTABLISHED_RELIABILITY", 0.6, "Reliability (from the record) a player needs for their votes to "
            "count in consensus; 50% on gold, whose answers are balanced, is guessing.", float),
    Setting("ESTABLISHED_ALPHA", 0.05, "Most often an account answering secret gold without looking may ever be "
            "established, however often its standing is checked: the record must weigh at least 1 / alpha times "
            "more for ESTABLISHED_ALTERNATIVE than for chance (a likelihood ratio, a martingale under chance, so "
            "Ville's inequality bounds the chance of ever passing by alpha). bench/bench_establishment.py: 2.0% of "
            "chance-level accounts ever pass within 60 gold answers (3.6% with 5 answers at the least), against 22% "
            "under the earlier one-look certainty of 0.95 re-checked after every answer; an honest player at 80% "
            "passes at 20 answers (median, the least ESTABLISHED_GOLD_ANSWERS allows), 92% within 36.", float),
    Setting("ESTABLISHED_ALTERNATIVE", 0.8, "The accuracy on secret gold that the establishment test weighs "
            "against chance (a careful player's: fresh players scored 80-84% in the looking tests); players more "
            "accurate pass sooner, less accurate later.", float),
    Setting("VOICE_EVIDENCE", 9.2, "Evidence (a log likelihood ratio) at which two accounts whose votes count are "
            "taken to answer as one (a replayed table of answers, one person behind many accounts) and share one "
            "voice for good: on any puzzle their counted votes count as one (game.crowd.voices). The log of the "
            "number of pairs of counted players is added, so that independent players are joined with "
            "probability at most exp(-VOICE_EVIDENCE) on the whole instance (9.2: 1 in 10,000), as far as the "
            "test's predictions of their agreement hold. Decisions a new voice's votes made are decided again, "
            "and an edit the voice alone carried is reverted. 0: no new voices are looked for; those found "
            "stay.", float),
    Setting("VOICE_SLACK", 0.05, "Share of answers in which an account copying another's may differ from it (the "
            "copying model of the VOICE_EVIDENCE test, mixed with 2 and 4 times it; above 0, below 0.25).",
            _slack),
    Setting("CONSENSUS_RULE", "weighted", "How votes decide: 'weighted' (reliability-weighted posterior with "
            "the detector's prior) or 'majority' (plain majority, for comparison).", _choice("weighted", "majority")),
    Setting("REFIT_EVERY_VOTES", 50, "Every player's standing is recomputed from their record (secret gold "
            "answers and agreement with settled decisions) after this many new votes.", int),
    # --- gold and practice puzzles
    Setting("GOLD_PER_KIND", 18, "Secret gold puzzles made per kind in a volume with ground truth (half of each "
            "answer, fewer when the right edits run out): they measure players and show no "
            "outcome. A player at 80% needs 20 of them (median) to be established (ESTABLISHED_GOLD_ANSWERS, "
            "ESTABLISHED_ALPHA); 36 let 92% of such players pass.", int),
    Setting("TEACH_PER_KIND", 6, "Teach puzzles made per kind (half of each answer): the outcome is shown on the "
            "puzzle, so they never count toward a player's standing.", int),
    Setting("PRACTICE_PER_KIND", 4, "Practice (tutorial) puzzles of each kind made per volume with truth, half of "
            "each answer.", int),
    Setting("GOLD_SHARE", 0.15, "Share of puzzles with known truth (gold or teach) served to a player once they "
            "have answered ESTABLISHED_GOLD_ANSWERS secret gold puzzles.", float),
    Setting("SETTLING_GOLD_ANSWERS", 0, "Past ESTABLISHED_GOLD_ANSWERS, a player is handed known-answer puzzles at "
            "GOLD_SHARE_SETTLING until they have answered this many secret gold puzzles, right or wrong (a count, "
            "never the standing, as the introduction): a player at 80% not yet established at 20 answers mostly is "
            "within 36, and its crowd votes until then weigh nothing. 0: off. bench/bench_simulate.py, crowd 0.8: "
            "at 36 with GOLD_SHARE_SETTLING 0.5 the demo (9 runs) took 4.82 votes per retired puzzle against 5.13 "
            "and closed 64.3% / 59.2% of the true ARE / VI gap against 68.9% / 59.2%; fibsem-gala's seeds 0-8 "
            "closed 88% / 87% on average (seed 2: 52% / 62%) against 100% in each.", _count),
    Setting("GOLD_SHARE_SETTLING", 0.5, "Share of puzzles with known truth between ESTABLISHED_GOLD_ANSWERS and "
            "SETTLING_GOLD_ANSWERS secret gold answers.", float),
    Setting("GOLD_SHARE_NEW", 1.0, "Share of puzzles with known truth served to a player until they have answered "
            "ESTABLISHED_GOLD_ANSWERS secret gold puzzles: their votes do not count in consensus yet, so they "
            "first earn a record (and learn from the teach puzzles' outcomes); crowd puzzles come when the known "
            "ones run out.", float),
    Setting("ASSIGNMENT_TTL", 3600, "Seconds a puzzle handed to a player may be answered; a vote needs the "
            "ticket that came with the puzzle.", int),
    # --- points (game.crowd.scoring), in the spirit of Eyewire
    Setting("POINTS_EFFORT", 10, "Points for every yes/no answer.", int),
    Setting("POINTS_UNSURE_EFFORT", 2, "Points for an unsure answer (less, so that skipping is no way to farm "
            "points).", int),
    Setting("POINTS_AGREEMENT_BONUS", 20, "Points when a retired puzzle's consensus agrees with the vote.", int),
    Setting("POINTS_GOLD_BONUS", 20, "Points for a correct gold answer.", int),
    Setting("POINTS_GOLD_PENALTY", 10, "Points lost per wrong gold answer, times the gold misses in a row.", int),
    Setting("POINTS_STREAK_BONUS", 2, "Extra points per earlier correct answer in the current streak.", int),
    Setting("POINTS_STREAK_CAP", 10, "Longest streak that still adds points.", int),
    Setting("POINTS_ACCURACY_WINDOW", 30, "Gold answers the accuracy shown to a player is taken over.", int),
    # --- the rest
    Setting("FAST_ANSWER_MS", 700, "Answers quicker than this (milliseconds) come before the slices can be looked "
            "at; a player giving most answers this fast is flagged for the admin.", int),
    Setting("SAME_ADDRESS_ACCOUNTS", 4, "Accounts made from one address (kept as a keyed hash) from which the admin "
            "page flags them (a classroom shares one address: raise it for schools).", int),
    Setting("IMPORT_FOLDERS", "", "Server folders (separated by ':') from which admins may import volumes by path; "
            "empty: only HOME/imports.", str),
    Setting("LIVING_POOL", True, "After every decision, scan the segments it concerns again: new candidates become "
            "puzzles, and a rejected cut opens the next one of that segment (off: the first start's puzzles only).",
            _bool),
    Setting("SPLIT_TREE_DEPTH", 4, "The last merges that built a segment, proposed as cuts whatever the boundary "
            "across them; deeper merges are proposed where SPLIT_CUT_CONTRAST finds evidence (see "
            "bench/bench_split_reach.py).", _count),
    Setting("SPLIT_CUT_CONTRAST", 0.0, "A deeper merge is proposed as a cut when the mean boundary across the cut "
            "exceeds the segment's inside mean by more than this (-1: every merge). A segment's cuts are asked "
            "strongest boundary first, SPLIT_OPEN_CUTS at a time.", float),
    Setting("SPLIT_OPEN_CUTS", 1, "Cuts of one segment asked at once, strongest boundary first: the next opens as "
            "one is decided. One walks a segment's cuts one decision at a time, and a big correct cut deep in the "
            "walk can stay unasked when players stop; 3 closed +2.6 / +1.0 points of the ARE / VI gap for 27% more votes "
            "(bench/bench_simulate.py, 9 runs each, within the spread).", _positive),
    Setting("POOL_OPEN", 1000, "Most open crowd puzzles a volume keeps: beyond it the candidates expected to gain "
            "most (score times game.puzzles.edit.edit_value; whether a person can judge them by looking is known "
            "only once they are framed) become puzzles and the rest wait, coming in as decisions retire puzzles (a "
            "20x1024x1024 volume had 12,106 candidates, framed in 21 minutes before its first puzzle; the demo's "
            "~800 are all open at once). 0: every candidate at once.", _count),
    Setting("KNOWN_SAMPLE", 1000, "At first start, candidates of each kind and answer framed to choose the practice, "
            "teach and gold puzzles from (a random sample of more; their weights in the score's calibration scaled "
            "to match). 0: every candidate.", _count),
    Setting("PRERENDER", True, "Draw a crowd puzzle's pictures when the pool makes it, and again when a decision "
            "changes its parts, so that no player waits for them (off: drawn on first request).", _bool),
    Setting("PUZZLE_ORDER", "uncertainty", "Which open puzzle a player gets next: 'uncertainty', the most "
            "uncertain first (every judgeable puzzle before the rest), or 'value', the one expected to gain most "
            "(the detector's score times what a right edit gains, game.puzzles.edit.edit_value; halved when hard "
            "to judge by looking; up to doubled on its way to a decision; a player whose votes do not count yet "
            "gets the end). bench/bench_simulate.py, crowd 0.8: on the demo (9 runs) 'value' closed 33% of the VI "
            "gap in the first 2,000 votes against 22% (both with SPLIT_HOLD_BELIEF 0.1) and as much in all, but "
            "on fibsem-gala, where 20 players are the whole crowd, 1-3 of 9 runs closed 52-84% (a right big merge "
            "answered early, while records were short, stayed below the bar once all 20 had answered), against "
            "none of 9.", _choice("value", "uncertainty")),
    Setting("SPLIT_HOLD_BELIEF", 0.1, "An open split puzzle holds back merge puzzles onto its segment (a merge "
            "applied before a needed cut drags the wrong piece along) while the cut's probability, the detector's "
            "score moved by the answers of players past their introduction (counted or not: what is held back is "
            "seen by all), is at least this; 0: every open cut holds them. The merge tree proposes "
            "a cut for most segments, nearly all wrong: at 0 the crowd's first quarter of votes applied almost no "
            "merge. bench/bench_simulate.py, demo0-2, crowd 0.8, seeds 0-2 (9 runs each): at 0.1 rather than 0, "
            "true VI gap closed after 2,000 votes 22% against 10% (uncertainty order; value order 32% against "
            "17%), and in all 63% against 59%.",
            _probability),
    Setting("LEADERBOARD_INTERVAL", 0.5, "Seconds between leaderboard broadcasts (throttling).", float),
    Setting("ASYNC_MODE", "gevent", "How the server runs many players at once: 'gevent' (greenlets on one event loop; "
            "the science work runs on native threads beside it) or 'threading' (one OS thread per connection). "
            "bench/bench_socket.py measures both.", _choice("threading", "gevent")),
    Setting("MESSAGE_QUEUE", "", "Flask-SocketIO message queue URL (e.g. redis://127.0.0.1:6379) to run "
            "several server processes; empty for one process.", str),
    Setting("SECURE_COOKIES", False, "Send session cookies only over HTTPS.", _bool),
    Setting("TRUSTED_PROXIES", 0, "Reverse proxies (nginx, Caddy) in front of the server that each add to "
            "X-Forwarded-For and set X-Forwarded-Proto and -Host: the client's address is then the entry that many "
            "from the right, so rate limits and accounts per address count players, not the proxy. 0: no proxy, "
            "the headers are ignored (a client could write anything in them).", _count),
    # --- classes (game.crowd.classes)
    Setting("JOIN_CODE_HOURS", 24.0, "Hours a class's join code works after it is made or rotated (students "
            "who joined can always come back on their device).", float),
    Setting("PUBLIC_URL", "", "Address students' phones reach the game at (e.g. http://192.168.1.20:5000), "
            "used in join links and QR codes; empty: the address the teacher's browser used.", str),
    Setting("ALLOWED_ORIGINS", "", "Origins besides the server's own host allowed to open a Socket.IO "
            "connection, comma-separated (e.g. https://game.example.org behind a proxy that rewrites Host).", str),
    Setting("RATE_LIMITS_ENABLED", True, "Apply the RATE_LIMIT_* limits.", _bool),
    Setting("RATE_LIMIT_STORAGE", "memory://", "Where the rate limits count: memory:// for one process, a "
            "shared store such as redis://127.0.0.1:6379 for several.", str),
    Setting("RATE_LIMIT_GUEST", "60 per minute; 600 per hour", "Guest accounts made per client address (a "
            "class of 40 behind one school NAT joins at once).", _rate_limit),
    Setting("RATE_LIMIT_REGISTER", "60 per minute; 600 per hour", "Sign-ups per client address.", _rate_limit),
    Setting("RATE_LIMIT_LOGIN", "120 per minute", "Log-in attempts per client address, right or wrong.",
            _rate_limit),
    Setting("RATE_LIMIT_LOGIN_FAILURES", "5 per minute; 20 per hour", "Failed log-ins per username and client "
            "address (password guessing).", _rate_limit),
    Setting("RATE_LIMIT_VOTES", "90 per minute; 2000 per hour", "Votes per player, by REST and Socket.IO "
            "together (an honest player answers at most about one puzzle a second).", _rate_limit),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def load_settings(overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Defaults, then ``PROOFQUEST_*`` environment variables, then ``overrides``."""
    environ = os.environ if environ is None else environ
    values = {s.name: s.default for s in SETTINGS}
    for s in SETTINGS:
        raw = environ.get(ENV_PREFIX + s.name)
        if raw is not None and raw != "":
            try:
                values[s.name] = s.parse(raw)
            except ValueError as exc:
                raise ProofQuestError(f"environment variable {ENV_PREFIX}{s.name}={raw!r} is invalid: {exc}") from exc
    for name, value in (overrides or {}).items():
        if name in SETTINGS_BY_NAME:
            values[name] = value
    return values


def setting_field(name: str):
    """A dataclass field whose default and help come from the setting ``name`` (one source of both)."""
    setting = SETTINGS_BY_NAME[name]
    return field(default=setting.default, metadata={"setting": name, "help": setting.help})


def dataclass_settings(cls, settings: dict[str, Any]):
    """An instance of a dataclass of :func:`setting_field` fields, from a settings dict.

    Values are parsed like environment variables when they are strings; the
    dataclass validates them (its ``__post_init__``), so a bad combination is
    refused with a message that names the settings, never silently adjusted.
    """
    return _dataclass_settings(cls, tuple((field_name, name, settings.get(name, default))
                                          for field_name, name, default in _setting_fields(cls)))


@functools.cache
def _setting_fields(cls) -> tuple:
    return tuple((f.name, f.metadata["setting"], f.default) for f in fields(cls))


@functools.lru_cache(maxsize=32)
def _dataclass_settings(cls, values: tuple):
    parsed = {}
    for field_name, name, value in values:
        if isinstance(value, str):
            try:
                value = SETTINGS_BY_NAME[name].parse(value)
            except ValueError as exc:
                raise ProofQuestError(f"setting {name}={value!r} is invalid: {exc}") from exc
        parsed[field_name] = value
    return cls(**parsed)


def project_root() -> Path:
    """The folder holding ``game/``, ``models/`` and ``static/``."""
    return Path(__file__).resolve().parents[2]


def resolve_model_path(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else project_root() / p


def settings_markdown() -> str:
    lines = ["# Settings", "",
             f"Each can be set by an environment variable `{ENV_PREFIX}NAME`.", "",
             "| name | default | meaning |", "| --- | --- | --- |"]
    for s in SETTINGS:
        default = ",".join(map(str, s.default)) if isinstance(s.default, tuple) else s.default
        lines.append(f"| `{s.name}` | `{default}` | {s.help} |")
    return "\n".join(lines) + "\n"
