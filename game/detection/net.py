"""The error detector's network: a small 2.5D CNN that scores a proposed edit.

Each suspected error is seen as a stack of ``PATCH_SLICES`` sections around its
location, ``PATCH`` pixels square, with four channels per section: the EM
image, the boundary map, and masks of the two parts the puzzle would show (the
two segments of a merge candidate; the staying and the moving side of a split
candidate), as in the 4-channel patches of Guided Proofreading. Scalar
features of the contact or cut (boundary statistics, sizes, normalized-cut
value) join the image features before the two heads, one per kind.

The network learns a *correction to the baseline*: the logit is an affine
function of the baseline score (faint contact → merge; strong cut → split)
plus the network's output, whose last layer starts at zero. An untrained
detector therefore ranks exactly as the baseline does, and training moves it
away only as far as the data support.

Stored as ``{'arch', 'state_dict', 'card'}``, loadable with
``torch.load(weights_only=True)``.

References
----------
Haehn, D. et al. (2018). Guided Proofreading of automatic segmentations for
connectomics. CVPR.
Zung, J., Tartavull, I., Lee, K., Seung, H. S. (2017). An error detection and
correction framework for connectomics. NIPS.
"""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from game.errors import ProofQuestError
from game.evaluation.metrics import roc_auc
from game.progress import ProgressCallback

PATCH_SLICES = 3
PATCH = 64
CHANNELS = ("image", "boundary", "part_a", "part_b")
SCALARS = ("baseline", "boundary_mean", "boundary_min", "boundary_max", "anchor_mean",
           "log_contact_area", "log_size_small", "log_size_large",
           "log_supervoxels_small", "log_supervoxels_large", "ncut", "neck",
           "cut_ncut", "cut_attachment", "cut_min_cut")
KIND_INDEX = {"merge": 0, "split": 1}


@dataclass
class Examples:
    """Candidates as network inputs, with labels when known.

    Attributes
    ----------
    patches : ndarray of uint8, shape (n, PATCH_SLICES * 4, PATCH, PATCH)
        Per section: image 0..255, boundary 0..255, part A 0/1, part B 0/1.
    scalars : ndarray of float32, shape (n, len(SCALARS))
    kinds : ndarray of int64, shape (n,)
        0 merge, 1 split.
    labels : ndarray of float32, shape (n,), or None
        1 when the proposed edit is correct.
    """

    patches: np.ndarray
    scalars: np.ndarray
    kinds: np.ndarray
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.kinds)

    def subset(self, index: np.ndarray) -> "Examples":
        return Examples(self.patches[index], self.scalars[index], self.kinds[index],
                        None if self.labels is None else self.labels[index])

    @classmethod
    def concatenate(cls, parts: list["Examples"]) -> "Examples":
        labelled = all(p.labels is not None for p in parts)
        return cls(np.concatenate([p.patches for p in parts]), np.concatenate([p.scalars for p in parts]),
                   np.concatenate([p.kinds for p in parts]),
                   np.concatenate([p.labels for p in parts]) if labelled else None)


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class DetectorNet(nn.Module):
    """Scores proposed edits: P(the edit is correct) = sigmoid(forward(...)).

    Parameters
    ----------
    width : int
        Channels of the first convolution (doubled with depth).
    slices : int
        Sections per patch.
    n_scalars : int
        Length of the scalar feature vector.
    """

    def __init__(self, width: int = 12, slices: int = PATCH_SLICES, n_scalars: int = len(SCALARS)):
        super().__init__()
        self.arch = {"width": width, "slices": slices, "n_scalars": n_scalars}
        # half resolution first: a neurite a few pixels across at 64 px still shows, at a quarter of the cost
        self.trunk = nn.Sequential(
            nn.AvgPool2d(2), _block(slices * len(CHANNELS), width), nn.MaxPool2d(2),
            _block(width, 2 * width), nn.MaxPool2d(2),
            _block(2 * width, 2 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.correction = nn.Sequential(nn.Linear(2 * width + n_scalars + 2, 32), nn.ReLU(inplace=True),
                                        nn.Linear(32, 2))
        nn.init.zeros_(self.correction[-1].weight)
        nn.init.zeros_(self.correction[-1].bias)
        # logit = scale * (baseline - 0.5) + bias: the baseline's ranking, roughly calibrated
        self.baseline_scale = nn.Parameter(torch.full((2,), 8.0))
        self.baseline_bias = nn.Parameter(torch.full((2,), -1.5))
        self.card: dict = {}

    def forward(self, patches: torch.Tensor, scalars: torch.Tensor, kinds: torch.Tensor) -> torch.Tensor:
        """Logits, shape (n,), for uint8 or float ``patches`` as stored in :class:`Examples`."""
        image = normalise_patches(patches, self.arch["slices"])
        features = torch.cat([self.trunk(image), scalars, F.one_hot(kinds, 2).float()], dim=1)
        correction = self.correction(features).gather(1, kinds[:, None])[:, 0]
        baseline = self.baseline_scale[kinds] * (scalars[:, 0] - 0.5) + self.baseline_bias[kinds]
        return baseline + correction


def normalise_patches(patches: torch.Tensor, slices: int = PATCH_SLICES) -> torch.Tensor:
    """Stored patches as network input: image standardised per patch, boundary 0..1, masks 0/1.

    Standardising each patch's image makes the detector indifferent to the
    contrast and brightness of a volume, which differ between microscopes.
    """
    x = patches.float().reshape(len(patches), slices, len(CHANNELS), *patches.shape[-2:])
    image = x[:, :, 0]
    mean = image.mean(dim=(1, 2, 3), keepdim=True)
    std = image.std(dim=(1, 2, 3), keepdim=True).clamp_min(1.0)
    x = torch.stack([(image - mean) / std, x[:, :, 1] / 255.0, x[:, :, 2], x[:, :, 3]], dim=2)
    return x.reshape(len(patches), slices * len(CHANNELS), *patches.shape[-2:])


def augment(patches: torch.Tensor, generator: torch.Generator, slices: int = PATCH_SLICES) -> torch.Tensor:
    """Each patch turned by a random element of the square's symmetry group, its sections maybe reversed."""
    n = len(patches)
    turns = torch.randint(0, 4, (n,), generator=generator)
    flips = torch.randint(0, 2, (n,), generator=generator).bool()
    reverse = torch.randint(0, 2, (n,), generator=generator).bool()
    out = patches.clone()
    for k in range(4):
        for flip in (False, True):
            chosen = (turns == k) & (flips == flip)
            if chosen.any():
                part = torch.rot90(patches[chosen], k, dims=(-2, -1))
                out[chosen] = torch.flip(part, dims=(-1,)) if flip else part
    if reverse.any():
        stacked = out[reverse].reshape(int(reverse.sum()), slices, len(CHANNELS), *out.shape[-2:])
        out[reverse] = stacked.flip(1).reshape(int(reverse.sum()), -1, *out.shape[-2:])
    return out


def _tensors(examples: Examples) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (torch.from_numpy(np.ascontiguousarray(examples.patches)),
            torch.from_numpy(np.ascontiguousarray(examples.scalars, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(examples.kinds, dtype=np.int64)))


@torch.no_grad()
def predict(model: DetectorNet, examples: Examples, *, batch_size: int = 256,
            progress: ProgressCallback | None = None) -> np.ndarray:
    """P(the proposed edit is correct) for each example."""
    model.eval()
    patches, scalars, kinds = _tensors(examples)
    out = []
    for start in range(0, len(examples), batch_size):
        stop = start + batch_size
        out.append(torch.sigmoid(model(patches[start:stop], scalars[start:stop], kinds[start:stop])))
        if progress is not None:
            progress(min(stop, len(examples)), len(examples))
    return torch.cat(out).numpy().astype(float) if out else np.zeros(0)


def ranking_quality(scores: np.ndarray, examples: Examples) -> float:
    """Mean over kinds of the ROC AUC, counting the kinds that have both classes; NaN if none."""
    aucs = [roc_auc(scores[examples.kinds == k], examples.labels[examples.kinds == k]) for k in (0, 1)]
    aucs = [a for a in aucs if not np.isnan(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def log_loss(scores: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(scores, 1e-6, 1 - 1e-6)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def train_detector(examples: Examples, *, validation: Examples | None = None, model: DetectorNet | None = None,
                   epochs: int = 20, batch_size: int = 64, learning_rate: float = 2e-3,
                   weight_decay: float = 1e-3, seed: int = 0, checkpoint: str | Path | None = None,
                   card: dict | None = None,
                   progress: Callable[[int, int, dict], None] | None = None) -> tuple[DetectorNet, list[dict]]:
    """Train (or go on training) a detector on labelled examples.

    Parameters
    ----------
    examples : Examples
        Training examples with labels.
    validation : Examples, optional
        Labelled examples to choose the epoch by (the best mean per-kind ROC
        AUC, ties going to the lower log loss); without them the last epoch is kept.
    model : DetectorNet, optional
        Weights to start from (fine-tuning); a copy is trained. Default: a new network.
    epochs, batch_size, learning_rate, weight_decay, seed
        AdamW with cosine decay of the learning rate; ``seed`` fixes the
        initialisation, the batches and the augmentation.
    checkpoint : path, optional
        Where to save the best weights after each epoch that improves them.
    card : dict, optional
        Model card stored with the weights.
    progress : callable, optional
        ``progress(epoch, epochs, record)`` after each epoch.

    Returns
    -------
    model : DetectorNet
        The chosen weights, in evaluation mode.
    history : list of dict
        Per epoch: ``epoch``, ``loss``, and with validation ``auc``, ``log_loss``.
    """
    if examples.labels is None or len(examples) == 0:
        raise ProofQuestError("training the detector needs labelled examples; label the candidates first")
    torch.manual_seed(seed)
    model = DetectorNet() if model is None else copy.deepcopy(model)
    if card is not None:
        model.card = dict(card)
    generator = torch.Generator().manual_seed(seed)
    patches, scalars, kinds = _tensors(examples)
    labels = torch.from_numpy(examples.labels.astype(np.float32))
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    steps = max(1, epochs * -(-len(examples) // batch_size))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    best, best_key, history = copy.deepcopy(model.state_dict()), None, []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(examples), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            if len(batch) < 2:  # batch normalisation needs two samples
                continue
            logits = model(augment(patches[batch], generator), scalars[batch], kinds[batch])
            loss = F.binary_cross_entropy_with_logits(logits, labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(batch)
        record = {"epoch": epoch, "loss": total / len(examples)}
        if validation is not None:
            scores = predict(model, validation)
            record.update(auc=ranking_quality(scores, validation), log_loss=log_loss(scores, validation.labels))
            key = (np.nan_to_num(record["auc"], nan=0.0), -record["log_loss"])
            if best_key is None or key > best_key:
                best, best_key = copy.deepcopy(model.state_dict()), key
                if checkpoint is not None:
                    save_detector(model, checkpoint)
        history.append(record)
        if progress is not None:
            progress(epoch, epochs, record)
    if validation is not None:
        model.load_state_dict(best)
    elif checkpoint is not None:
        save_detector(model, checkpoint)
    return model.eval(), history


def save_detector(model: DetectorNet, path: str | Path) -> None:
    """Write ``{'arch', 'state_dict', 'card'}`` (the card holds plain data: str, numbers, lists, dicts)."""
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    torch.save({"arch": dict(model.arch), "state_dict": state, "card": dict(model.card)}, Path(path))


def load_detector(path: str | Path) -> DetectorNet:
    """A detector saved by :func:`save_detector`, in evaluation mode, with its ``card``."""
    path = Path(path)
    if not path.is_file():
        raise ProofQuestError(f"no detector model at {path}; train one (bench/train_default_detector.py) "
                              "or give another path")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = DetectorNet(**saved["arch"])
        model.load_state_dict(saved["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise ProofQuestError(f"{path} is not a detector saved by game.detection.net.save_detector "
                              f"({error})") from error
    if model.arch["n_scalars"] != len(SCALARS):
        raise ProofQuestError(f"{path} expects {model.arch['n_scalars']} scalar features but this version "
                              f"computes {len(SCALARS)}; retrain the detector")
    model.card = saved.get("card", {})
    return model.eval()
