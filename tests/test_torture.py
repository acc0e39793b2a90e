"""Crash torture in CI size (200 files, 5 kills); the full run is `make torture`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.torture.harness import run_torture

SEED = int(os.environ.get("TORTURE_SEED", "20261128"))


def test_kill_9_torture_loses_nothing_and_does_nothing_twice(tmp_path: Path) -> None:
    """Files dropped in every pattern while the agent is SIGKILLed 5 times: each ends in done/
    or failed/ exactly once, one finished job each, one document per content, sound databases."""
    print(f"torture seed {SEED}")
    report = run_torture(tmp_path, n_files=200, kills=5, seed=SEED)
    print(f"{report.seconds:.0f} s, counts {report.counts}")
    assert report.ok, "\n".join(report.violations)


@pytest.mark.slow
def test_full_torture(tmp_path: Path) -> None:
    """The full configuration: 1,000 files, 20 kills."""
    report = run_torture(tmp_path, n_files=1000, kills=20, seed=SEED)
    print(f"{report.seconds:.0f} s, counts {report.counts}")
    assert report.ok, "\n".join(report.violations)
