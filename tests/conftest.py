"""Shared fixtures: instance folders in tmp_path, a tiny demo volume, the app and its clients."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TINY_SHAPE = (16, 96, 96)


def shared_data(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test when the folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real EM data not found at {path}")
    return path


@pytest.fixture(scope="session")
def tiny_demo_home(tmp_path_factory) -> Path:
    """An instance folder holding a small generated demo volume (made once per session)."""
    from game import pipeline
    from game.instance import Instance

    home = tmp_path_factory.mktemp("demo-home")
    inst = Instance(home, _settings(home))
    pipeline.make_demo(inst, "demo", shape=TINY_SHAPE, seed=3)
    inst.store.close()
    return home


def _settings(home: Path, **extra) -> dict:
    from game.config import load_settings
    return load_settings({"HOME": str(home), "DEMO_SHAPE": TINY_SHAPE, "DEMO_SEED": 3, **extra}, environ={})


@pytest.fixture
def home(tmp_path, tiny_demo_home) -> Path:
    """A fresh copy of the tiny demo instance folder for one test."""
    target = tmp_path / "instance"
    shutil.copytree(tiny_demo_home, target)
    return target


@pytest.fixture
def inst(home):
    from game.instance import Instance
    instance = Instance(home, _settings(home))
    yield instance
    instance.store.close()
