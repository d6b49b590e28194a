"""How long steps report progress, everywhere in ProofQuest.

A step takes a :data:`ProgressCallback` and calls it as ``callback(done,
total)``; a whole-volume command that runs several steps takes a
:data:`ProgressFactory` and asks it for one callback per step, by
description (the command line gives tqdm bars, first start writes the jobs
table the landing page shows).
"""

from __future__ import annotations

from typing import Callable

ProgressCallback = Callable[[int, int], None]
ProgressFactory = Callable[[str], "ProgressCallback | None"]
