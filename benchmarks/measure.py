"""Repeated, interleaved measurement: every benchmark compares its sides through this.

Sides run A, B, A, B … for ``samples`` rounds (the order flips each round, so neither side
always runs first on a warm or cold machine). Each sample records the 1-minute load average
beside it. A comparison reports the median and min–max of each side and of the per-round
ratio; a goal counts as met only when the median ratio meets it.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class Series:
    """The samples of one side (a rate or a time), with the load average at each."""

    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)
        self.loads.append(os.getloadavg()[0])

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def spread(self, fmt: str = ".3g") -> str:
        return (f"{self.median:{fmt}} {self.unit} (min {min(self.values):{fmt}}, "
                f"max {max(self.values):{fmt}}; load {min(self.loads):.1f}–"
                f"{max(self.loads):.1f}, n={len(self.values)})")


def interleave(sides: Mapping[str, Callable[[], float]], samples: int = 5, unit: str = "",
               ) -> dict[str, Series]:
    """Run each side once per round, alternating the order; each call returns one sample."""
    series = {name: Series(name, unit) for name in sides}
    names = list(sides)
    for round_no in range(samples):
        order = names if round_no % 2 == 0 else names[::-1]
        for name in order:
            series[name].add(sides[name]())
    return series


def ratio(a: Series, b: Series, *, higher_is_better: bool = True) -> Series:
    """Per-round a ÷ b (for times, b ÷ a, so that above 1 always means a is better)."""
    out = Series(f"{a.name} / {b.name}", "×")
    for x, y, la, lb in zip(a.values, b.values, a.loads, b.loads, strict=True):
        out.values.append(x / y if higher_is_better else y / x)
        out.loads.append(max(la, lb))
    return out


def verdict(r: Series, goal: float, *, at_least: bool = True) -> str:
    met = r.median >= goal if at_least else r.median <= goal
    sign = "≥" if at_least else "≤"
    return f"goal {sign} {goal:g}×: {'met' if met else 'MISS'} (median {r.median:.2f}×)"


def report(title: str, series: Sequence[Series]) -> None:
    print(title)
    for s in series:
        print(f"  {s.name:<34} {s.spread()}")
