"""ProofQuest: a citizen-science game for proofreading neuron segmentations."""

__version__ = "0.1.0"
