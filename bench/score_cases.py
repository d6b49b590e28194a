"""The volumes the edit score is trained and measured on, and their labelled candidates.

A *case* is one volume (or slab) with one boundary map and its supervoxels, as the game's pipeline
makes them; a *segmentation* is a case agglomerated at one threshold (mean agglomeration, then
fragments under FOLD_MAX_VOXELS folded, as the game does), and its candidates (every kind:
contact and gap merges, tree splits) are labelled from the ground truth
(game.puzzles.edit.label_edits) and given the score's features (game.detection.score.with_features)
and, for contact merges on volumes with an image, the CNN's score (models/detector.pt).

Cases (name → what):

- ``fib-{lo,hi}-{p1,ft,filter,net}``: fibsem-gala (FIB-SEM, 10 nm) cut at z = 35, ``lo`` z < 35,
  ``hi`` z >= 35; boundary maps: gala's train-p1 with gala's supervoxels train-ws (p1); the shipped
  boundary network fine-tuned by the game's ``train_boundary`` on z < 35 alone (no validation slab:
  nothing sees z >= 35; the epoch of lowest training loss) with watershed supervoxels as ``segment``
  makes them (ft); the classical filter with train-ws, the game's map for an import without one
  (filter); the shipped network as is, watershed (net).
- ``demo{seed}-{net,filter}``: a generated 32x192x192 demo volume with the boundary network's or the
  classical filter's map, watershed supervoxels.
- ``snemi``: snemi-mini (SNEMI3D, 6x6x30 nm), its probability map inverted (the file is high inside
  cells, as README's import example says: --invert-boundary), its fragments; no image.

Intermediate files go to bench/out/score_cache/ (ignored by git).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import fastremap
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from game.detection.candidates import contact_points, find_candidates  # noqa: E402
from game.detection.detect import ArrayVolume, candidate_examples  # noqa: E402
from game.detection.net import load_detector, predict  # noqa: E402
from game.detection.score import with_features  # noqa: E402
from game.evaluation.metrics import supervoxel_truth  # noqa: E402
from game.puzzles.edit import label_edits  # noqa: E402
from game.segmentation.agglomeration import Agglomeration  # noqa: E402
from game.segmentation.merging import agglomerate, fold_fragments  # noqa: E402
from game.segmentation.rag import build_rag  # noqa: E402
from game.segmentation.watershed import watershed_supervoxels  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
FIBSEM, SNEMI = DATA / "fibsem-gala", DATA / "snemi-mini"
CACHE = ROOT / "bench" / "out" / "score_cache"
SPLIT_Z = 35
DEMO_SHAPE = (32, 192, 192)
FOLD_MAX_VOXELS = 32  # the game's default (game/app/settings.py)
CNN_MODEL = ROOT / "models" / "detector.pt"
FIB_THRESHOLDS = {"p1": (0.3, 0.4, 0.5, 0.6, 0.7), "ft": (0.3, 0.4, 0.5, 0.6, 0.7),
                  "filter": (0.3, 0.4, 0.5, 0.6), "net": (0.5, 0.6, 0.7, 0.8)}
DEMO_THRESHOLDS = (0.4, 0.5, 0.6)
SNEMI_THRESHOLDS = (0.15, 0.2, 0.25, 0.3)
GAME_THRESHOLD = 0.5


class Case:
    """A volume with one boundary map and its supervoxels, ready for candidate finding."""

    def __init__(self, name, image, boundary, supervoxels, groundtruth):
        supervoxels = fastremap.renumber(np.asarray(supervoxels), preserve_zero=True)[0].astype(np.uint32)
        layers = dict(boundary=boundary, supervoxels=supervoxels, groundtruth=np.asarray(groundtruth, np.uint32))
        if image is not None:
            layers["image"] = image
        self.name = name
        self.volume = ArrayVolume(**layers)
        self.rag = build_rag(supervoxels, boundary)
        self.sizes, self.points = contact_points(self.volume, self.rag)
        self.sv_truth = supervoxel_truth(supervoxels, groundtruth)

    def segmentation(self, threshold: float) -> Agglomeration:
        return Agglomeration(fold_fragments(self.rag, agglomerate(self.rag, threshold), self.sizes,
                                            max_voxels=FOLD_MAX_VOXELS))


def _uint8(probability):
    return np.rint(np.clip(probability, 0, 1) * 255).astype(np.uint8)


def _h5(file):
    import h5py
    with h5py.File(FIBSEM / file, "r") as f:
        return f["stack"][:]


def finetuned_fibsem_boundary() -> np.ndarray:
    """The shipped boundary network fine-tuned on fibsem-gala z < 35 alone, predicted on the whole volume."""
    path = CACHE / "fibsem_boundary_ft.npy"
    if path.is_file():
        return np.load(path)
    from game.segmentation.boundary import predict_boundary, train_boundary
    from game.segmentation.unet import load_model
    image, gt = _h5("train-image.h5"), _h5("train-gt.lzf.h5")
    started = time.process_time()
    train_boundary(image[:SPLIT_Z], gt[:SPLIT_Z], epochs=20, checkpoint_dir=CACHE / "boundary_ft", val_slab=None,
                   initial_model=load_model(ROOT / "models" / "boundary_unet.pt"), device="cpu", progress=None)
    boundary = predict_boundary(image, None, load_model(CACHE / "boundary_ft" / "best.pt"), device="cpu")
    np.save(path, boundary)
    print(f"boundary network fine-tuned on fibsem z<{SPLIT_Z}: {time.process_time() - started:.0f} s CPU",
          file=sys.stderr, flush=True)
    return boundary


def fibsem_case(part: str, source: str) -> Case:
    """A slab of fibsem-gala (``part`` 'lo': z < 35, 'hi': z >= 35) with boundary map ``source``."""
    z = slice(0, SPLIT_Z) if part == "lo" else slice(SPLIT_Z, None)
    image, gt = _h5("train-image.h5"), _h5("train-gt.lzf.h5")
    if source in ("p1", "filter"):
        if source == "p1":
            boundary = _uint8(_h5("train-p1.lzf.h5"))
        else:
            from game.segmentation.filters import membrane_probability
            boundary = _uint8(membrane_probability(image))
        return Case(f"fib-{part}-{source}", image[z], boundary[z], _h5("train-ws.lzf.h5")[z], gt[z])
    if source == "ft":
        boundary = finetuned_fibsem_boundary()[z]
    else:
        from game.segmentation.boundary import predict_boundary
        from game.segmentation.unet import load_model
        boundary = predict_boundary(image, None, load_model(ROOT / "models" / "boundary_unet.pt"), device="cpu")[z]
    return Case(f"fib-{part}-{source}", image[z], boundary, watershed_supervoxels(boundary), gt[z])


def demo_case(seed: int, source: str, shape=DEMO_SHAPE) -> Case:
    """A generated demo volume with the network's (``net``) or the classical filter's map."""
    from train_default_detector import boundary_map

    from game.volumes.synthetic import DemoSpec, generate
    spec = DemoSpec(shape=tuple(shape), seed=seed)
    image, gt = generate(spec)
    boundary = boundary_map(image, "network" if source == "net" else "filter")
    relative = tuple(r / min(spec.resolution) for r in spec.resolution)
    return Case(f"demo{seed}-{source}", image, boundary, watershed_supervoxels(boundary, sampling=relative), gt)


def snemi_case() -> Case:
    """snemi-mini: its inverted probability map and its fragments (no image)."""
    import tifffile

    def read(layer):
        return tifffile.imread(SNEMI / f"train-{layer}.tif")
    # the file is high inside cells (mean 227 inside, 143 on ground-truth boundaries): imported as
    # `import ... --invert-boundary` would
    return Case("snemi", None, 255 - read("probabilities"), read("fragments"), read("labels"))


def make_case(name: str) -> Case:
    if name == "snemi":
        return snemi_case()
    if name.startswith("fib-"):
        _, part, source = name.split("-")
        return fibsem_case(part, source)
    seed, source = name[4:].split("-")
    return demo_case(int(seed), source)


def thresholds(name: str):
    if name == "snemi":
        return SNEMI_THRESHOLDS
    return FIB_THRESHOLDS[name.split("-")[-1]] if name.startswith("fib-") else DEMO_THRESHOLDS


def available(name: str) -> bool:
    return (name.startswith("demo") or (name == "snemi" and SNEMI.is_dir())
            or (name.startswith("fib-") and FIBSEM.is_dir()))


def labelled_candidates(case: Case, threshold: float, cnn=None) -> list[dict]:
    """The candidates of one segmentation with a known truth, their features and (contact merges) CNN scores."""
    agg = case.segmentation(threshold)
    found = label_edits(find_candidates(case.volume, agg, case.rag, sizes=case.sizes, points=case.points),
                        agg, case.sv_truth, sizes=case.sizes)
    found = with_features([c for c in found if c["truth"] is not None], case.rag, agg, case.sizes)
    contact = [k for k, c in enumerate(found) if c.get("how") == "contact"]
    if cnn is not None and case.volume.has("image") and contact:
        examples, keep = candidate_examples(case.volume, agg, [found[k] for k in contact])
        for k, s in zip(np.asarray(contact)[keep].tolist(), predict(cnn, examples).tolist()):
            found[k]["features"]["cnn"] = float(s)
    return [{"case": case.name, "threshold": threshold, "kind": c["kind"], "how": c["how"], "truth": bool(c["truth"]),
             "rank": c.get("rank", 0), "features": c["features"]} for c in found]


def dataset(name: str, *, refresh: bool = False) -> list[dict]:
    """Every labelled candidate of a case over its thresholds (cached as JSON lines)."""
    path = CACHE / f"candidates_{name}.jsonl"
    if path.is_file() and not refresh:
        return [json.loads(line) for line in path.read_text().splitlines()]
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    started = time.process_time()
    case = make_case(name)
    cnn = load_detector(CNN_MODEL)
    rows = [row for t in thresholds(name) for row in labelled_candidates(case, t, cnn)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    count = {how: sum(r["how"] == how for r in rows) for how in ("contact", "gap", "tree")}
    correct = {how: sum(r["how"] == how and r["truth"] for r in rows) for how in ("contact", "gap", "tree")}
    print(f"{name}: " + ", ".join(f"{how} {count[how]}/{correct[how]}" for how in count)
          + f" (candidates/correct), {time.process_time() - started:.0f} s CPU", file=sys.stderr, flush=True)
    return rows


if __name__ == "__main__":
    for case_name in sys.argv[1:]:
        dataset(case_name, refresh=True)
