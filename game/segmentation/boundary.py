"""Boundary maps from EM images: training the U-Net and predicting block by block.

The boundary network (:mod:`game.segmentation.unet`) turns an EM image into a per-voxel
membrane probability, the map that the watershed cuts into supervoxels and
whose values the region adjacency graph averages along each contact.
Everything here works on plain arrays or on a reader ``read(bbox) -> array``,
so volumes larger than memory stream through :func:`predict_boundary` a block
at a time.

References
----------
Ronneberger, O., Fischer, P., Brox, T. (2015). U-Net: Convolutional networks
for biomedical image segmentation. MICCAI.
Çiçek, Ö. et al. (2016). 3D U-Net: learning dense volumetric segmentation
from sparse annotation. MICCAI.
Turaga, S. C. et al. (2010). Convolutional networks can learn to generate
affinity graphs for image segmentation. Neural Computation 22(2).
Lee, K., Zung, J., Li, P., Jain, V., Seung, H. S. (2017). Superhuman accuracy
on the SNEMI3D connectomics challenge. arXiv:1706.00120.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from game.errors import ProofQuestError
from game.geometry import BBox
from game.progress import ProgressCallback
from game.segmentation.unet import BoundaryUNet, fold_batchnorm, save_model

Reader = Callable[[BBox], np.ndarray]

LAST_CHECKPOINT = "last.pt"
BEST_MODEL = "best.pt"

# Streams of the seed sequence: training crops (per epoch) and the fixed validation crops.
_TRAINING_STREAM, _VALIDATION_STREAM = 0, 1
# What the ground truth given to training is: neuron labels (3D, or drawn per section) or a membrane mask.
TARGETS = ("labels", "membranes")


# --------------------------------------------------------------------------
# Inputs, targets and the score of a boundary map

def image_to_input(image: np.ndarray) -> np.ndarray:
    """uint8 EM intensities as the network's float32 input, 0..1.

    A fixed scaling rather than per-block normalisation, so a voxel's input
    does not depend on the block it was read in.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ProofQuestError(f"the boundary network reads uint8 images, got {image.dtype}; "
                              f"rescale the image to 0..255 first")
    return image.astype(np.float32) * np.float32(1 / 255)


def boundary_targets(groundtruth: np.ndarray, *, axes: Sequence[int] = (1, 2)) -> np.ndarray:
    """Where the ground truth puts a boundary: 1.0 on boundary voxels, 0.0 inside objects.

    A voxel is boundary when it is labelled 0 (membrane or unlabeled) or when
    it touches a voxel of another non-zero label across a face along one of
    ``axes``; both voxels of such a pair are marked, so objects that touch
    get a two-voxel boundary. A voxel beside label 0 is not marked: the 0
    voxels already are its boundary, and marking it too would thicken every
    annotated membrane band by two voxels.

    Parameters
    ----------
    groundtruth : (z, y, x) integer labels.
    axes : the axes along which a change of label is a boundary; the default
        (1, 2) looks only in-plane, because in anisotropic EM a label change
        between sections is not a visible membrane. Use (0, 1, 2) for the 3D
        6-neighbourhood in isotropic data.

    Returns
    -------
    float32 array of the shape of ``groundtruth``.
    """
    groundtruth = np.asarray(groundtruth)
    if groundtruth.ndim != 3:
        raise ProofQuestError(f"ground truth must be a (z, y, x) volume, got shape {groundtruth.shape}")
    labelled = groundtruth != 0
    boundary = ~labelled
    for axis in axes:
        before = [slice(None)] * 3
        after = [slice(None)] * 3
        before[axis], after[axis] = slice(None, -1), slice(1, None)
        before, after = tuple(before), tuple(after)
        touching = (groundtruth[before] != groundtruth[after]) & labelled[before] & labelled[after]
        boundary[before] |= touching
        boundary[after] |= touching
    return boundary.astype(np.float32)


def boundary_scores(probability: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Voxel-wise precision–recall summary of a boundary map against its targets.

    Parameters
    ----------
    probability : boundary map, uint8 0..255 or float 0..1 (rounded to 256
        levels, which makes the computation exact and linear in the voxels).
    targets : 1 on true boundary voxels (:func:`boundary_targets`).

    Returns
    -------
    dict with ``average_precision`` (area under the precision–recall curve
    as a step sum over thresholds, the definition of scikit-learn's
    ``average_precision_score``), ``best_f1`` and ``best_threshold`` (the
    level in 0..1 at which F1 peaks), and ``boundary_fraction``.
    """
    probability = np.asarray(probability)
    if probability.shape != np.shape(targets):
        raise ProofQuestError(f"boundary map {probability.shape} and targets {np.shape(targets)} differ in shape")
    if probability.dtype != np.uint8:
        probability = np.clip(np.rint(probability * 255), 0, 255).astype(np.uint8)
    truth = np.asarray(targets) > 0
    positives = np.bincount(probability[truth], minlength=256)[::-1].cumsum()
    negatives = np.bincount(probability[~truth], minlength=256)[::-1].cumsum()
    if positives[-1] == 0:
        raise ProofQuestError("the targets hold no boundary voxel, so precision and recall are undefined")
    precision = positives / np.maximum(positives + negatives, 1)
    recall = positives / positives[-1]
    average_precision = float(np.sum(np.diff(recall, prepend=0.0) * precision))
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1))
    return {"average_precision": average_precision, "best_f1": float(f1[best]),
            "best_threshold": (255 - best) / 255, "boundary_fraction": float(truth.mean())}


# --------------------------------------------------------------------------
# Prediction

def default_device() -> torch.device:
    """CUDA when there is a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _as_reader(source, shape) -> tuple[Reader, tuple[int, int, int]]:
    """A reader and the volume shape, from a reader and shape or from an array-like."""
    if callable(source):
        if shape is None:
            raise ProofQuestError("a reader needs the volume's shape: predict_boundary(read, shape, model)")
        return source, tuple(int(s) for s in shape)
    if shape is not None and tuple(shape) != tuple(source.shape):
        raise ProofQuestError(f"shape {tuple(shape)} does not match the array's {tuple(source.shape)}")
    return (lambda bbox: np.asarray(source[bbox.slices])), tuple(source.shape)


def _context_box(tile: BBox, overlap: Sequence[int], divisor: int, shape: Sequence[int]) -> BBox:
    """The box read to predict ``tile``: grown by ``overlap`` and aligned to the pooling grid.

    Starting every read at a multiple of the in-plane pooling factor puts the
    network's pooling windows in the same place for every block, which (with
    enough overlap) makes blockwise prediction equal the one-pass result.
    """
    grown = tile.expand(overlap)
    start = (grown.start[0],) + tuple(s // divisor * divisor for s in grown.start[1:])
    return BBox(start, grown.stop).clip(shape)


def _positive_triple(values: Sequence[int], what: str, minimum: int) -> tuple[int, int, int]:
    values = tuple(int(v) for v in values)
    if len(values) != 3 or min(values) < minimum:
        raise ProofQuestError(f"{what} must be three (z, y, x) sizes >= {minimum}, got {values}")
    return values


# the blocks predicted at once and the context read around each (see predict_boundary)
BLOCK = (32, 128, 128)
OVERLAP = (4, 16, 16)


def predict_boundary(read: Reader | np.ndarray, shape: Sequence[int] | None, model: BoundaryUNet, *,
                     block: Sequence[int] = BLOCK, overlap: Sequence[int] = OVERLAP,
                     device: str | torch.device | None = None,
                     progress: ProgressCallback | None = None,
                     write: Callable[[BBox, np.ndarray], None] | None = None) -> np.ndarray | None:
    """The boundary map of a volume, predicted block by block.

    Each block of ``block`` voxels is predicted from a read grown by
    ``overlap`` on every side, and only its centre is kept, so seams vanish
    once the overlap covers the network's context
    (:attr:`BoundaryUNet.context_radius`); less overlap trades a small
    difference near block faces for speed.

    Parameters
    ----------
    read : ``read(bbox) -> uint8 array`` of the image inside ``bbox``, or an
        array-like (numpy, zarr, h5py dataset) holding the image.
    shape : (z, y, x) of the volume; may be None when ``read`` is an array.
    model : the boundary network; batch normalisation is folded into the
        convolutions for the prediction (the model itself is not changed).
    block : size of the blocks whose predictions are kept.
    overlap : voxels of context read on each side of a block.
    device : where to run; by default CUDA when available, else the CPU.
    progress : called as ``progress(blocks_done, blocks_total)``.
    write : when given, each finished block goes to ``write(bbox, boundary)``
        instead of into one array, for volumes larger than memory.

    Returns
    -------
    uint8 array of ``shape``, boundary probability × 255; None when
    ``write`` is given.
    """
    read, shape = _as_reader(read, shape)
    block = _positive_triple(block, "block", 1)
    overlap = _positive_triple(overlap, "overlap", 0)
    device = torch.device(device) if device is not None else default_device()
    network = inference_network(model, device)
    tiles = list(BBox.from_shape(shape).tiles(block))
    boundary = None if write is not None else np.empty(shape, np.uint8)
    for done, tile in enumerate(tiles, start=1):
        levels = predict_tile(network, read, tile, overlap, shape, device)
        if write is None:
            boundary[tile.slices] = levels
        else:
            write(tile, levels)
        if progress is not None:
            progress(done, len(tiles))
    return boundary


def inference_network(model: BoundaryUNet, device: str | torch.device) -> BoundaryUNet:
    """The network as :func:`predict_tile` runs it: batch normalisation folded, on ``device``."""
    return fold_batchnorm(model).to(torch.device(device)).to(memory_format=torch.channels_last_3d)


def predict_tile(network: BoundaryUNet, read: Reader, tile: BBox, overlap: Sequence[int], shape: Sequence[int],
                 device: str | torch.device) -> np.ndarray:
    """The boundary of one block of :func:`predict_boundary` (uint8, probability × 255), from its context.

    ``network`` comes from :func:`inference_network`; a task of a blockwise
    run (:mod:`game.blockwise`) calls this for its block alone.
    """
    context = _context_box(tile, overlap, network.divisor, shape)
    image = read(context)
    if tuple(image.shape) != context.shape:
        raise ProofQuestError(f"read({context}) returned shape {tuple(image.shape)}, expected {context.shape}")
    with torch.inference_mode():
        x = torch.from_numpy(image_to_input(image))[None, None].to(device, memory_format=torch.channels_last_3d)
        probability = torch.sigmoid(network(x)[0, 0][tile.relative_to(context)])
        return (probability * 255).round_().to(torch.uint8).cpu().numpy()


# --------------------------------------------------------------------------
# Training

@dataclass(frozen=True)
class TrainingSettings:
    """How a boundary network is trained, beyond the epochs and the seed.

    Parameters
    ----------
    steps_per_epoch : optimiser steps in an epoch.
    batch_size : random crops per step.
    crop : (z, y, x) size of a training crop; y and x equal allow the
        in-plane 90° rotations.
    learning_rate : Adam's step size.
    validation_crops : fixed crops from the held-out slab that the
        validation loss is measured on.
    base_channels, levels : the :class:`BoundaryUNet`'s architecture.
    """

    steps_per_epoch: int = 20
    batch_size: int = 4
    crop: tuple[int, int, int] = (16, 96, 96)
    learning_rate: float = 2e-3
    validation_crops: int = 8
    base_channels: int = 8
    levels: int = 2

    def as_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}


def balanced_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy in which boundary and interior voxels weigh half each.

    Boundaries are a small fraction of the voxels; without the balance a
    network does well by predicting "interior" everywhere and leaves gaps in
    the membranes, which the watershed turns into false merges. The boundary
    fraction is clipped to 1..99 % so a crop inside one cell stays finite.
    """
    fraction = targets.mean().clamp(0.01, 0.99)
    weights = targets / (2 * fraction) + (1 - targets) / (2 * (1 - fraction))
    return F.binary_cross_entropy_with_logits(logits, targets, weight=weights)


def _random_crop(rng: np.random.Generator, volume_shape: Sequence[int], crop: Sequence[int],
                 slab: tuple[int, int]) -> BBox:
    """A crop of size ``crop`` placed uniformly inside z in ``[slab[0], slab[1])``."""
    start = [rng.integers(slab[0], slab[1] - crop[0] + 1)]
    start += [rng.integers(0, size - c + 1) for size, c in zip(volume_shape[1:], crop[1:])]
    return BBox(start, [s + c for s, c in zip(start, crop)])


def augment(rng: np.random.Generator, image: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flips along every axis, in-plane 90° rotations and intensity jitter.

    The geometric changes are symmetries of the tissue that the network
    should not care about; the jitter (contrast, brightness, gamma, noise)
    stands for the variation between sections and microscopes.
    """
    for axis in range(3):
        if rng.random() < 0.5:
            image, targets = np.flip(image, axis), np.flip(targets, axis)
    if image.shape[1] == image.shape[2]:
        turns = int(rng.integers(4))
        image, targets = np.rot90(image, turns, axes=(1, 2)), np.rot90(targets, turns, axes=(1, 2))
    contrast, brightness, gamma = rng.uniform(0.75, 1.25), rng.uniform(-0.1, 0.1), np.exp(rng.uniform(-0.3, 0.3))
    image = np.clip(image, 0, 1) ** gamma * contrast + brightness
    image = image + rng.normal(0, rng.uniform(0, 0.05), image.shape)
    return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(targets)


def membrane_targets(mask: np.ndarray) -> np.ndarray:
    """A membrane mask (uint8 probability × 255, as the ``membranes`` layer holds it) as targets: 1.0 from 0.5 up."""
    return (np.asarray(mask) >= 128).astype(np.float32)


class _Volumes:
    """The training volumes and where each may be cropped.

    Crops are read on demand, so the volumes may be lazy arrays (zarr, HDF5)
    larger than memory. Training crops come from ``z < split``, validation
    crops from ``z >= split`` (or from the separate ``validation`` pairs),
    each as deep as its slab allows, up to the crop's depth.
    """

    def __init__(self, images, groundtruths, crop: Sequence[int], val_slab: int | None, *,
                 targets: str = "labels", validation=None):
        if hasattr(images, "shape"):
            images, groundtruths = [images], [groundtruths]
        if targets not in TARGETS:
            raise ProofQuestError(f"targets {targets!r}: use one of {', '.join(TARGETS)}")
        self.targets = targets
        self.pairs = self._checked(images, groundtruths)
        depth = min(image.shape[0] for image in images)
        split = depth if val_slab is None else int(val_slab)
        if not 0 < split <= depth:
            raise ProofQuestError(f"val_slab={val_slab} must lie in 1..{depth} (the held-out slab is z >= val_slab)")
        if validation is not None and split < depth:
            raise ProofQuestError("hold out sections or give a separate validation volume, not both")
        self.training_slab = (0, split)
        self.crop = self._fitted(crop, split, self.pairs)
        self.validation_pairs = self.pairs if split < depth else \
            (self._checked(*validation) if validation is not None else None)
        self.validation_slab = (split, depth) if split < depth else \
            ((0, min(image.shape[0] for image, _ in self.validation_pairs)) if validation is not None else None)
        self.validation_crop = None if self.validation_slab is None else self._fitted(
            crop, self.validation_slab[1] - self.validation_slab[0], self.validation_pairs)

    @staticmethod
    def _checked(images, groundtruths) -> list:
        if hasattr(images, "shape"):
            images, groundtruths = [images], [groundtruths]
        if len(images) != len(groundtruths) or not images:
            raise ProofQuestError(f"give one ground truth per image; got {len(images)} images "
                                  f"and {len(groundtruths)} ground truths")
        for image, groundtruth in zip(images, groundtruths):
            if tuple(image.shape) != tuple(groundtruth.shape) or len(image.shape) != 3:
                raise ProofQuestError(f"image {tuple(image.shape)} and ground truth {tuple(groundtruth.shape)} "
                                      f"must be (z, y, x) volumes of one shape")
        return list(zip(images, groundtruths))

    @staticmethod
    def _fitted(crop: Sequence[int], depth: int, pairs) -> tuple[int, int, int]:
        height, width = (min(image.shape[axis] for image, _ in pairs) for axis in (1, 2))
        fitted = (min(crop[0], depth), min(crop[1], height), min(crop[2], width))
        return (fitted[0],) + (min(fitted[1:]),) * 2 if crop[1] == crop[2] else fitted

    def _read(self, rng: np.random.Generator, slab: tuple[int, int], pairs, crop) -> tuple[np.ndarray, np.ndarray]:
        image, groundtruth = pairs[int(rng.integers(len(pairs)))]
        box = _random_crop(rng, image.shape, crop, slab)
        if self.targets == "membranes":
            return image_to_input(image[box.slices]), membrane_targets(groundtruth[box.slices])
        # one voxel more in-plane so that the targets at the crop's faces see their neighbours
        halo = box.expand((0, 1, 1)).clip(image.shape)
        targets = boundary_targets(np.asarray(groundtruth[halo.slices]))[box.relative_to(halo)]
        return image_to_input(image[box.slices]), targets

    def batch(self, rng: np.random.Generator, size: int, *, validation: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` random crops: augmented training crops, or plain validation crops."""
        if validation:
            crops = [self._read(rng, self.validation_slab, self.validation_pairs, self.validation_crop)
                     for _ in range(size)]
        else:
            crops = [self._read(rng, self.training_slab, self.pairs, self.crop) for _ in range(size)]
            crops = [augment(rng, image, targets) for image, targets in crops]
        images, targets = zip(*crops)
        return torch.from_numpy(np.stack(images)[:, None]), torch.from_numpy(np.stack(targets)[:, None])


def _save_atomically(payload: dict, path: Path) -> None:
    """Write through a temporary file so an interruption never leaves half a checkpoint."""
    partial = path.with_suffix(".partial")
    torch.save(payload, partial)
    os.replace(partial, path)


def _resume(path: Path, model: BoundaryUNet, optimizer: torch.optim.Optimizer, settings: dict,
            seed: int, device: torch.device) -> tuple[int, list[dict]]:
    saved = torch.load(path, map_location=device, weights_only=True)
    if saved["settings"] != settings or saved["seed"] != seed:
        raise ProofQuestError(f"{path} was written by a run with other settings or seed "
                              f"({saved['settings']}, seed {saved['seed']}); use another checkpoint folder "
                              f"or pass resume=False to start over")
    model.load_state_dict(saved["state_dict"])
    optimizer.load_state_dict(saved["optimizer"])
    return int(saved["epoch"]), list(saved["history"])


def train_boundary(image, groundtruth, *, epochs: int, checkpoint_dir: str | Path,
                   val_slab: int | None = None, resume: bool = True,
                   progress: Callable[[str], None] | None = print, seed: int = 0,
                   settings: TrainingSettings = TrainingSettings(),
                   initial_model: BoundaryUNet | None = None,
                   device: str | torch.device | None = None, targets: str = "labels",
                   validation: tuple | None = None) -> list[dict]:
    """Train a boundary network on volumes with ground truth.

    Each step takes ``settings.batch_size`` random, augmented crops from
    ``z < val_slab`` and minimises the class-balanced cross-entropy
    (:func:`balanced_bce`) with Adam. After every epoch the loss on fixed
    crops from ``z >= val_slab`` is measured, a checkpoint (model, optimiser,
    epoch, history) replaces ``checkpoint_dir/last.pt``, and the model with
    the lowest validation loss so far is kept as ``checkpoint_dir/best.pt``
    (loadable with :func:`game.segmentation.unet.load_model`). Crops are drawn from a
    generator seeded by (seed, epoch), so a resumed run continues exactly as
    an uninterrupted one would.

    Parameters
    ----------
    image : uint8 (z, y, x) volume, or a list of them.
    groundtruth : matching label volume(s) (:func:`boundary_targets`: neuron
        ids in 3D or drawn per section alike, since only in-plane changes
        are boundaries), or membrane masks with ``targets='membranes'``.
    epochs : total epochs; a resumed run trains only the missing ones.
    checkpoint_dir : folder for ``last.pt`` and ``best.pt`` (created).
    val_slab : z at which the held-out slab begins; None holds nothing out
        and keeps the model with the lowest training loss instead (or the
        lowest loss on ``validation``). Training and validation crops are
        each as deep as their slab allows, up to ``settings.crop``.
    resume : continue from ``checkpoint_dir/last.pt`` when it exists.
    progress : called with one line of text per epoch; None is silent.
    seed : seeds the initial weights, the crops and the augmentation.
    settings : crop and batch sizes, learning rate, architecture.
    initial_model : weights to start from instead of fresh ones, to
        fine-tune a network (the default one, say) to new data; its
        architecture must be the one in ``settings``.
    device : where to train; by default CUDA when available, else the CPU.
    targets : 'labels' or 'membranes' (uint8 masks, probability × 255, as
        the ``membranes`` layer holds them).
    validation : (image, ground truth) of a separate validation volume, or
        lists of them, used whole instead of a held-out slab.

    Returns
    -------
    list of dicts, one per epoch: ``epoch`` (1-based), ``train_loss``,
    ``val_loss`` (None without a held-out slab), ``best`` (whether this
    epoch's model is the one in ``best.pt``).
    """
    if epochs < 1 or settings.steps_per_epoch < 1 or settings.batch_size < 1:
        raise ProofQuestError(f"epochs, steps_per_epoch and batch_size must be positive; got {epochs}, "
                              f"{settings.steps_per_epoch}, {settings.batch_size}")
    volumes = _Volumes(image, groundtruth, settings.crop, val_slab, targets=targets, validation=validation)
    device = torch.device(device) if device is not None else default_device()
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    recorded = settings.as_dict()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BoundaryUNet(settings.base_channels, settings.levels)
    if initial_model is not None:
        if initial_model.arch != model.arch:
            raise ProofQuestError(f"the initial model's architecture {initial_model.arch} differs from the "
                                  f"settings' {model.arch}; set base_channels and levels to match")
        model.load_state_dict(initial_model.state_dict())
    # channels-last is what oneDNN and cuDNN convolve fastest, backward passes included
    model = model.to(device, memory_format=torch.channels_last_3d)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    last = checkpoint_dir / LAST_CHECKPOINT
    done, history = _resume(last, model, optimizer, recorded, seed, device) if resume and last.is_file() else (0, [])

    validation = None
    if volumes.validation_slab is not None:
        rng = np.random.default_rng([seed, _VALIDATION_STREAM])
        validation = volumes.batch(rng, settings.validation_crops, validation=True)

    for epoch in range(done + 1, epochs + 1):
        rng = np.random.default_rng([seed, _TRAINING_STREAM, epoch])
        record = {"epoch": epoch, "train_loss": _train_epoch(model, optimizer, volumes, rng, settings, device),
                  "val_loss": _validation_loss(model, validation, device), "best": False}
        score = record["val_loss"] if record["val_loss"] is not None else record["train_loss"]
        previous = [r["val_loss"] if r["val_loss"] is not None else r["train_loss"] for r in history]
        if not previous or score < min(previous):
            record["best"] = True
            save_model(model, checkpoint_dir / BEST_MODEL, card={
                "epoch": epoch, "train_loss": record["train_loss"], "val_loss": record["val_loss"],
                "seed": seed, "val_slab": val_slab, "settings": recorded})
        history.append(record)
        _save_atomically({"arch": model.arch, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "epoch": epoch, "history": history, "settings": recorded, "seed": seed}, last)
        if progress is not None:
            val = "" if record["val_loss"] is None else f", validation loss {record['val_loss']:.4f}"
            progress(f"epoch {epoch}/{epochs}: training loss {record['train_loss']:.4f}{val}"
                     + (" (best so far)" if record["best"] else ""))
    return history


def _train_epoch(model: BoundaryUNet, optimizer: torch.optim.Optimizer, volumes: _Volumes,
                 rng: np.random.Generator, settings: TrainingSettings, device: torch.device) -> float:
    """One epoch of optimiser steps on random augmented crops; the mean training loss."""
    model.train()
    losses = []
    for _ in range(settings.steps_per_epoch):
        x, y = volumes.batch(rng, settings.batch_size)
        x, y = (t.to(device, memory_format=torch.channels_last_3d) for t in (x, y))
        loss = balanced_bce(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def _validation_loss(model: BoundaryUNet, validation, device: torch.device) -> float | None:
    if validation is None:
        return None
    model.eval()
    with torch.inference_mode():
        x, y = (t.to(device, memory_format=torch.channels_last_3d) for t in validation)
        return float(balanced_bce(model(x), y).item())
