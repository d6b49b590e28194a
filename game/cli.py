"""The command line: ``python run.py [--home DIR] [COMMAND ...]``.

Without a command it starts the game server. Every command reads the
instance folder from ``--home`` or ``PROOFQUEST_HOME`` (default
``./instance``). A user error prints one line that says what to do and exits
with status 2, having written nothing. What it writes is private to the user
who runs it (umask 077): the instance folder holds password hashes and the
secret key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from tqdm import tqdm

from game.app.settings import ENV_PREFIX, load_settings, settings_markdown
from game.errors import ProofQuestError


class TqdmBar:
    """A tqdm bar behind the ``progress(done, total)`` callbacks the core takes."""

    def __init__(self, desc: str, enabled: bool = True):
        self.desc, self.enabled, self.bar = desc, enabled, None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit="step", file=sys.stderr, leave=True)
        self.bar.total = total
        self.bar.n = done
        if done >= total:
            self.close()
        else:
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def progress_factory(enabled: bool = True) -> Callable[[str], TqdmBar]:
    return lambda desc: TqdmBar(desc, enabled)


def _instance(args):
    from pathlib import Path

    from game.app.instance import Instance
    settings = load_settings({"HOME": args.home} if getattr(args, "home", None) else None)
    home = Path(settings["HOME"]).expanduser()
    existed = home.exists()
    inst = Instance(home, settings)
    if not existed:  # a mistyped --home would otherwise quietly start a new world
        print(f"note: {home} did not exist; created a new instance folder there", file=sys.stderr)
    return inst


def _triple(text: str, what: str, cast=float):
    try:
        values = tuple(cast(v) for v in text.split(","))
    except ValueError:
        raise ProofQuestError(f"{what} must be three comma-separated numbers Z,Y,X, got {text!r}") from None
    if len(values) != 3:
        raise ProofQuestError(f"{what} must be three numbers Z,Y,X, got {text!r}")
    return values


# ----------------------------------------------------------------------------- commands

def cmd_serve(args) -> int:
    from game.server import serve
    serve(_instance(args), host=args.host, port=args.port, progress=progress_factory())
    return 0


def cmd_demo(args) -> int:
    from game.app import pipeline
    inst = _instance(args)
    shape = _triple(args.shape, "--shape", int) if args.shape else inst.settings["DEMO_SHAPE"]
    info = pipeline.make_demo(inst, args.name or inst.settings["DEMO_NAME"], shape=shape,
                              seed=inst.settings["DEMO_SEED"] if args.seed is None else args.seed,
                              overwrite=args.force, progress=progress_factory(), scheduler=args.scheduler)
    print(json.dumps(info, indent=2))
    return 0


def cmd_import(args) -> int:
    from game.app import pipeline
    info = pipeline.import_volume(
        _instance(args), args.name, image=args.image, segmentation=args.segmentation,
        supervoxels=args.supervoxels, boundary=args.boundary, groundtruth=args.groundtruth,
        resolution=_triple(args.resolution, "--resolution") if args.resolution else None,
        invert_boundary=args.invert_boundary, groundtruth_kind=args.groundtruth_kind, overwrite=args.force,
        progress=progress_factory(), scheduler=args.scheduler)
    print(json.dumps(info, indent=2))
    return 0


def cmd_agglomerate(args) -> int:
    from game.app import pipeline
    info = pipeline.agglomerate_volume(_instance(args), args.name, threshold=args.threshold,
                                       discard_edits=args.discard_edits, anisotropic=args.anisotropic,
                                       progress=progress_factory(), scheduler=args.scheduler)
    print(json.dumps(info, indent=2))
    return 0


def cmd_evaluate(args) -> int:
    from game.app import pipeline
    inst = _instance(args)
    result = pipeline.evaluate_volume(inst, args.name, progress=progress_factory(not args.json))
    gap = pipeline.quality_gap(inst, args.name)
    if args.json:
        print(json.dumps({**result, "initial": gap["initial"], "limit": gap["limit"], "gap_closed": gap["gap_closed"]}))
    else:
        if result["per_section"]:
            print(f"ground truth drawn per section: every figure is the mean over {result['per_section']} sections "
                  "(2D adapted Rand error and VI; edge accuracy over edges inside one section)")
        print(f"{'':>20}  {'initial':>9} {'current':>9} {'limit':>9}")
        for key, value in result.items():
            if key == "per_section":
                continue
            row = [gap["initial"][key], value, gap["limit"][key]]
            print(f"{key:>20}: " + " ".join(f"{v:9.4f}" if isinstance(v, float) else f"{v!s:>9}" for v in row))
        closed = gap["gap_closed"]
        print(f"{'true gap closed':>20}: ARE {closed['adapted_rand_error']:.1%}, VI {closed['vi']:.1%} "
              "(of initial − supervoxel limit)")
    return 0


def cmd_export(args) -> int:
    from game.app import exports
    path = exports.export(_instance(args), args.name, what=args.what, fmt=args.format, out=args.out, at=args.at,
                          progress=TqdmBar("export"), scheduler=args.scheduler)
    print(f"wrote {path}")
    return 0


def cmd_simulate(args) -> int:
    try:
        from game import simulate
    except ImportError as exc:
        raise ProofQuestError(f"simulate needs the Socket.IO client ({exc.name} is missing): "
                              "pip install -e '.[simulate]'") from None
    crowd = simulate.Crowd(players=args.players, accuracy=args.accuracy, chance_share=args.chance_share,
                           votes_per_player=args.votes_per_player, seed=args.seed, patience=args.patience,
                           hard_accuracy=args.hard_accuracy)
    result = simulate.run(_instance(args), args.url, crowd, progress=None if args.json else TqdmBar("votes"),
                          expert=args.expert)
    if args.json:
        print(json.dumps(result))
        return 0
    key = "adapted_rand_error"
    labels = {"initial": "automatic", "before": "known answers", "after": "crowd", "oracle": "oracle",
              "limit": "supervoxel limit"}
    if args.expert:
        labels["after_expert"] = "and the expert"
    for label, name in labels.items():
        q = result[label]
        print(f"{name:>16}: adapted Rand error {q[key]:.4f}  VI split {q['vi_split']:.3f}  "
              f"VI merge {q['vi_merge']:.3f}  edge accuracy {q['edge_accuracy']:.3f}  segments {q['segments']}")
    closed = result["gap_closed"]
    print("  true gap (automatic − supervoxel limit) closed: " + ", ".join(
        f"{part.replace('_', ' ')} ARE {closed[part][key]:.0%} VI {closed[part]['vi']:.0%}"
        for part in ("known_answers", "crowd", "total", *(("expert", "with_expert") if args.expert else ()),
                     "oracle")))
    print(f"  votes: {result['votes']} in {result['seconds']} s; VI gained per player-minute at "
          f"{simulate.SECONDS_PER_ANSWER} s per answer: {result['vi_per_player_minute'] or 0:.5f}")
    print(f"  decisions: {json.dumps(result['decisions'])}")
    if args.expert:
        print(f"  the expert's decisions: {json.dumps(result['expert_decisions'])}")
    return 0


def cmd_segment(args) -> int:
    from game.app import pipeline
    info = pipeline.segment_volume(_instance(args), args.name, model=args.model, threshold=args.threshold,
                                   discard_edits=args.discard_edits, anisotropic=args.anisotropic,
                                   progress=progress_factory(), scheduler=args.scheduler)
    print(json.dumps(info, indent=2))
    return 0


def cmd_train_boundary(args) -> int:
    from game.app import training
    if args.epochs < 1:
        raise ProofQuestError(f"--epochs {args.epochs}: train for at least one epoch")
    info = training.train_boundary_volume(_instance(args), args.name, epochs=args.epochs, out=args.out,
                                          holdout=args.holdout, validation=args.validation, crop=args.crop,
                                          steps_per_epoch=args.steps_per_epoch, from_scratch=args.from_scratch)
    print(json.dumps(info, indent=2))
    return 0


def cmd_detect(args) -> int:
    from game.detection import detect
    inst = _instance(args)
    bar = progress_factory(not args.json)("detecting errors")
    everything = detect.interleave(inst.pool.detect(args.name, progress=bar, scheduler=args.scheduler))
    report = detect.evaluate_ranking(everything) if any(c.get("truth") is not None for c in everything) else None
    found = everything[:args.limit]
    if args.json:
        print(json.dumps({"candidates": found, "evaluation": report}))
        return 0
    for rank, c in enumerate(found, 1):
        edit = f"move {len(c['supervoxels'])} supervoxels" if c["kind"] == "split" else "merge"
        truth = "" if c.get("truth") is None else f"  truth={'error' if c['truth'] else 'fine'}"
        print(f"{rank:4d}. {c['kind']:<5} score {c['score']:.3f} at {c['location']} segments {c['segments']} "
              f"({edit}){truth}")
    if report:
        for kind, figures in report.items():
            print(f"{kind}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in figures.items()))
    return 0


def cmd_retrain_detector(args) -> int:
    from game.app.settings import resolve_model_path
    from game.detection import detect
    from game.detection.score import how_of, load_score_model, retrain
    inst = _instance(args)
    if args.name not in inst.volumes.names():
        raise ProofQuestError(f"there is no volume {args.name!r}; the volumes are {inst.volumes.names()}")
    answers = detect.read_answers(args.labels)
    path = resolve_model_path(args.model or inst.settings["SCORE_MODEL"])
    model, report = retrain(load_score_model(path), answers, volume=args.name)
    kept = any(r.get("kept_new") for r in report.values())
    if kept:
        model.save(args.out or path)
    other = sum(how_of(a) is None for a in answers)  # split proposals of earlier versions
    print(json.dumps({"labels": len(answers), "other_kinds": other, "kept_new": kept, "kinds": report}, indent=2))
    return 0


def cmd_puzzles_report(args) -> int:
    from game.app import store as st
    from game.puzzles.report import puzzles_report
    inst = _instance(args)
    if args.name not in inst.volumes.names():
        raise ProofQuestError(f"there is no volume {args.name!r}; the volumes are {inst.volumes.names()}")
    report = puzzles_report(st.puzzles(inst.store, volume=args.name, tutorial=None))
    if args.json:
        print(json.dumps(report))
        return 0
    framing = report["framing"]
    pct = lambda v: "—" if v is None else f"{100 * v:.0f}%"
    print(f"{framing['puzzles']} puzzles: " + ", ".join(f"{n} {role}" for role, n in report["roles"].items()))
    print(f"decision point >= {framing['margin_goal_px']} px inside the image: {framing['decision_inside']} "
          f"({pct(framing['decision_inside_share'])}); nearest {framing['min_margin_px']} px")
    print(f"smallest part on the key slice: {framing['smallest_area_px']} px², narrowest {framing['smallest_width_px']}"
          f" px (thresholds {framing['sliver_thresholds']['area_px']} px², {framing['sliver_thresholds']['width_px']}"
          f" px); below them: {framing['below_threshold']}")
    print(f"judgeable by looking, as drawn: {framing['judgeable']} ({pct(framing['judgeable_share'])}; measured on the"
          f" view of {framing['on_view']}); hard to judge: {framing['hard_to_judge'] or 'none'}")
    for role, kinds in report["balance"].items():
        print(f"{role}: " + "; ".join(f"{kind} {k['yes']} yes / {k['no']} no ({pct(k['share_yes'])} yes"
                                      f"{', ' + str(k['near_ties']) + ' near ties' if k['near_ties'] else ''})"
                                      for kind, k in kinds.items()))
    for role, blind in report["blind"].items():
        print(f"blind on {role} ({blind['puzzles']}): always yes {pct(blind['always_yes'])}, always no "
              f"{pct(blind['always_no'])}, badge {pct(blind['badge'])}")
    verdict = {True: "met", False: "NOT met", None: "not measured (no such puzzles)"}
    print("goals: " + ", ".join(f"{goal} {verdict[met]}" for goal, met in report["goals"].items()))
    return 0


def cmd_volumes(args) -> int:
    from game.app import pipeline
    for row in pipeline.list_volumes(_instance(args)):
        print(json.dumps(row))
    return 0


def cmd_settings(args) -> int:
    if args.markdown:
        print(settings_markdown(), end="")
    else:
        for name, value in load_settings().items():
            print(f"{ENV_PREFIX}{name}={value}")
    return 0


def cmd_user(args) -> int:
    from game.app import players
    from game.app import store as st
    inst = _instance(args)
    if args.action == "list":
        for row in st.players_with_role(inst.store, args.role):
            print(json.dumps({k: row[k] for k in ("id", "username", "role")}))
        return 0
    if not args.username:
        raise ProofQuestError(f"user {args.action} needs a username")
    password = os.environ.get(args.password_env) if args.password_env else None
    if args.action == "add":
        if password is None:
            import getpass
            password = getpass.getpass(f"password for {args.username}: ")
        player = players.register(inst.store, args.username, password, role=args.role or "player")
    else:
        player = st.set_role(inst.store, args.username, args.role or "player")
    print(json.dumps({k: player[k] for k in ("id", "username", "role")}))
    return 0


def cmd_classes(args) -> int:
    from game.app import store as st
    for row in st.classes(_instance(args).store):
        print(json.dumps({k: row[k] for k in ("id", "name", "teacher", "students", "rounds")}))
    return 0


def cmd_round_report(args) -> int:
    from game.crowd import class_reports
    store = _instance(args).store
    make = class_reports.students_csv if args.what == "students" else class_reports.answers_csv
    text = make(store, args.class_id, args.round_id)
    if args.out:
        with open(args.out, "w", newline="") as f:
            f.write(text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


COMMANDS: dict[str, tuple[Callable, str]] = {
    "serve": (cmd_serve, "start the game server (the default when no command is given)"),
    "demo": (cmd_demo, "generate the bundled demo volume with its automatic segmentation"),
    "import": (cmd_import, "import a real volume from HDF5, TIFF, PNG slices, .npy or zarr"),
    "agglomerate": (cmd_agglomerate, "make supervoxels (if needed) and the initial segmentation"),
    "evaluate": (cmd_evaluate, "quality of the current segmentation against ground truth"),
    "export": (cmd_export, "write the segmentation (labels, now or at an earlier edit), votes, edits, puzzles "
                           "or answers to a file"),
    "segment": (cmd_segment, "boundary network, watershed, agglomeration: a new automatic segmentation"),
    "train-boundary": (cmd_train_boundary, ("fine-tune the boundary network on a volume's annotation (neuron ids "
                                            "in 3D or per section, or a membrane mask)")),
    "detect": (cmd_detect, "list suspected errors, best first"),
    "retrain-detector": (cmd_retrain_detector, "retrain the edit score on answers (exported JSON lines)"),
    "simulate": (cmd_simulate, "play a running game with simulated players and report the quality gained"),
    "puzzles-report": (cmd_puzzles_report,
                       "how answerable a volume's puzzles are: framing, part sizes, answer balance, blind strategies"),
    "volumes": (cmd_volumes, "list the volumes in the instance folder"),
    "settings": (cmd_settings, "print the settings and their values"),
    "user": (cmd_user, "add a player with a role (teacher, admin), change a player's role, or list them"),
    "classes": (cmd_classes, "list the teachers' classes"),
    "round-report": (cmd_round_report, "a class round's report as CSV: one row per student, or per answer"),
}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", default=argparse.SUPPRESS,
                        help=f"instance folder (default: ${ENV_PREFIX}HOME or ./instance)")
    parser = argparse.ArgumentParser(prog="run.py", parents=[common], description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default 5000)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = {name: sub.add_parser(name, parents=[common], help=text, description=text)
         for name, (_, text) in COMMANDS.items()}

    # SUPPRESS: `run.py --port N serve` keeps the N given before the command
    p["serve"].add_argument("--host", default=argparse.SUPPRESS)
    p["serve"].add_argument("--port", type=int, default=argparse.SUPPRESS)

    p["demo"].add_argument("--name", help="volume name (default: demo)")
    p["demo"].add_argument("--shape", help="size Z,Y,X (default 64,256,256)")
    p["demo"].add_argument("--seed", type=int, help="random seed (default 0)")
    p["demo"].add_argument("--force", action="store_true", help="replace an existing volume of that name")
    for command in ("demo", "segment", "import", "agglomerate", "detect", "export"):
        p[command].add_argument("--scheduler", help="where the blockwise stages run as dask tasks: threads "
                                "(default), processes, synchronous, or a dask.distributed scheduler's address "
                                "(tcp://host:8786)")

    imp = p["import"]
    imp.add_argument("name", help="name of the new volume")
    imp.add_argument("--image", required=True, metavar="FILE[:DATASET]", help="EM image (uint8 or scaled)")
    for layer in ("segmentation", "supervoxels", "boundary", "groundtruth"):
        imp.add_argument(f"--{layer}", metavar="FILE[:DATASET]")
    imp.add_argument("--invert-boundary", action="store_true",
                     help="the boundary file is high inside cells: use 1 - value as the membrane probability")
    imp.add_argument("--groundtruth-kind", choices=["auto", "3d", "2d", "membrane"], default="auto",
                     help="what --groundtruth is: neuron ids in 3D, labels drawn per section (each section's ids "
                          "independent: evaluated per section, never used for links across sections), or a "
                          "membrane mask (binary or probability; a training target). Default: found from the "
                          "file, and said in the result")
    imp.add_argument("--resolution", metavar="Z,Y,X",
                     help="voxel size in nm, z first (serial sections: e.g. 50,4.6,4.6); default 1,1,1")
    imp.add_argument("--force", action="store_true", help="replace an existing volume of that name")

    agg = p["agglomerate"]
    agg.add_argument("name")
    agg.add_argument("--threshold", type=float, help="mean boundary (0..1) below which to merge")
    agg.add_argument("--discard-edits", action="store_true",
                     help="allowed to forget the volume's edit log (needed when it has edits)")
    anisotropic = {"choices": ["auto", "on", "off"], "default": "auto",
                   "help": "serial sections: supervoxels made section by section and contacts across sections "
                           "linked by overlap (on), a 3D watershed (off), or on when z is at least "
                           "ANISOTROPY_RATIO times coarser than y and x (auto, the default)"}
    agg.add_argument("--anisotropic", **anisotropic)

    p["evaluate"].add_argument("name")
    p["evaluate"].add_argument("--json", action="store_true", help="print one JSON object")

    exp = p["export"]
    exp.add_argument("name")
    exp.add_argument("--what", default="labels", choices=["labels", "votes", "edits", "puzzles", "answers"],
                     help="labels: the segmentation; votes, edits, puzzles: the tables as CSV or JSON lines; "
                          "answers: the crowd's decisions as JSON lines, as retrain-detector reads them")
    exp.add_argument("--format", choices=["h5", "tif", "npy", "zarr", "csv", "jsonl"],
                     help="h5, tif, npy or zarr for labels; csv or jsonl for tables (default: from --out)")
    exp.add_argument("--out", required=True, help="output file; for zarr labels also a store URL fsspec opens "
                     "(s3://bucket/labels.zarr, with the package of its scheme installed)")
    exp.add_argument("--at", type=int, metavar="EDITS",
                     help="labels as they were after this many edits of the log (0: the automatic segmentation)")

    seg = p["segment"]
    seg.add_argument("name")
    seg.add_argument("--model", help="boundary network weights (default: the shipped model)")
    seg.add_argument("--threshold", type=float, help="agglomeration threshold (mean boundary, 0..1)")
    seg.add_argument("--discard-edits", action="store_true")
    seg.add_argument("--anisotropic", **anisotropic)

    tb = p["train-boundary"]
    tb.add_argument("name")
    tb.add_argument("--epochs", type=int, default=10)
    tb.add_argument("--out", default="models/boundary_unet_trained.pt")
    tb.add_argument("--steps-per-epoch", type=int, default=20, help="optimiser steps per epoch")
    tb.add_argument("--from-scratch", action="store_true", help="start from random weights, not the shipped model")
    tb.add_argument("--holdout", default="0.3", metavar="N|SHARE|none",
                    help="the last sections kept for validation: a count (4), a share (0.3, the default) or none "
                         "(the model with the lowest training loss is kept)")
    tb.add_argument("--validation", metavar="VOLUME", help="validate on this other volume instead of held-out sections")
    tb.add_argument("--crop", metavar="Z0:Z1,Y0:Y1,X0:X1",
                    help="train inside this box only (e.g. the annotated part); an empty bound is the volume's end")

    det = p["detect"]
    det.add_argument("name")
    det.add_argument("--limit", type=int, default=100, help="how many to list")
    det.add_argument("--json", action="store_true")

    rd = p["retrain-detector"]
    rd.add_argument("name")
    rd.add_argument("--labels", required=True, help="JSON lines: a candidate plus \"answer\": true|false")
    rd.add_argument("--model", help="edit score to start from (default: SCORE_MODEL)")
    rd.add_argument("--out", help="where to save it when a kind improved (default: over --model)")

    sim = p["simulate"]
    sim.add_argument("--url", required=True, help="the running game, e.g. http://127.0.0.1:5000")
    sim.add_argument("--players", type=int, default=20)
    sim.add_argument("--accuracy", type=float, default=0.8, help="the crowd's mean accuracy")
    sim.add_argument("--chance-share", type=float, default=0.1, help="share of players answering at chance")
    sim.add_argument("--hard-accuracy", type=float, default=None,
                     help="the crowd's mean accuracy on puzzles hard to judge by looking (slivers, islands, gaps "
                          "at the volume's edge; bench/looking_test.py measures it); default --accuracy")
    sim.add_argument("--votes-per-player", type=int, default=10_000, help="stop each player after this many")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--patience", type=float, default=30.0, metavar="SECONDS",
                     help="how long a player keeps coming back for new puzzles once none is left (the living pool "
                          "makes more as decisions are rescanned), as the play page does by itself; 0: leave at "
                          "once, before the rescans of the crowd's last decisions have run")
    sim.add_argument("--expert", action="store_true",
                     help="once the crowd has left, an expert (an admin account made for it, deciding by the truth) "
                          "settles the expert queue through the admin routes; its gain is reported apart")
    sim.add_argument("--json", action="store_true")

    p["puzzles-report"].add_argument("name", help="the volume")
    p["puzzles-report"].add_argument("--json", action="store_true", help="print one JSON object")

    p["settings"].add_argument("--markdown", action="store_true")

    user = p["user"]
    user.add_argument("action", choices=["add", "role", "list"])
    user.add_argument("username", nargs="?")
    user.add_argument("--role", choices=["player", "teacher", "admin"],
                      help="the role to give (default player); with list, only players of this role")

    report = p["round-report"]
    report.add_argument("class_id", type=int, metavar="CLASS")
    report.add_argument("round_id", type=int, metavar="ROUND")
    report.add_argument("--what", default="students", choices=["students", "answers"])
    report.add_argument("--out", help="CSV file to write (default: print it)")
    user.add_argument("--password-env", metavar="VAR", help="read the password from this environment variable")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.umask(0o077)
    handler = COMMANDS[args.command or "serve"][0]
    try:
        return handler(args)
    except ProofQuestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
