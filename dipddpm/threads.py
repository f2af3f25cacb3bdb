"""How many intra-op threads a single trial uses: chosen by measurement on the machine it runs on.

torch starts with one thread per core. Alone on a machine that can pay; beside any
other busy process on the same cores it collapses: at every op the threads wait on
each other while one of them is descheduled (on 2 cores beside a busy loop the cpu
profile's staged trial took 84 s with 2 threads, 25 s with 1; with more neighbours
a 2-thread DIP step took seconds). Whether more threads pay depends on the network,
the image size and what else runs, so the single-trial CLI times a few steps of the
trial's own network with each candidate count, at start, and keeps the fewest
threads within `MARGIN` of the fastest. Ray workers are not measured: the
orchestrator gives each the threads of the CPUs it reserved.

An explicit choice wins: `--threads N`, else a rerun's record's count (float sums split over
another number of threads differ in the last bits, so a rerun repeats its record exactly only
with the same count), else OMP_NUM_THREADS (which torch has read).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from .errors import ConfigError

# More threads must beat fewer by more than this: a smaller gain is within one short
# measurement's noise, and does not pay for the collapse more threads risk if a neighbour
# starts later (alone on 2 cores, 2 threads run the cpu profile's DIP step ~10 % faster).
MARGIN = 0.2
WARMUP_STEPS = 2  # the very first steps allocate buffers and choose kernels
ROUNDS, STEPS_PER_ROUND = 3, 3  # each count's median is over 9 steps, taken in 3 turns
HOPELESS = 2.0  # two steps this many times over the bar end a count's timing at once


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    how: str  # "measured", "--threads", "its record's", "OMP_NUM_THREADS", "one core" or "device cuda"
    ms_per_step: dict[int, float] = field(default_factory=dict)  # candidate -> median ms (measured only)
    cut_short: frozenset[int] = frozenset()  # stopped early: their time is the least of their slow steps
    seconds: float = 0.0  # what measuring cost

    def describe(self) -> str:
        """E.g. `threads 1 (measured in 0.6 s, ms/step: 1 → 21, 2 → >53)`; `>`: a candidate cut short."""
        if not self.ms_per_step:
            return f"threads {self.threads} ({self.how})"
        times = ", ".join(f"{n} → {'>' if n in self.cut_short else ''}{ms:.0f}"
                          for n, ms in sorted(self.ms_per_step.items()))
        return f"threads {self.threads} (measured in {self.seconds:.1f} s, ms/step: {times})"


def usable_cores() -> int:
    """The cores this process may run on (its affinity, e.g. a container's cpuset), not the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def candidates(cores: int) -> list[int]:
    """1, 2, 4, ... below `cores`, then `cores` itself: [1] on one core, [1, 2] on two, [1, 2, 4, 6] on six."""
    out, n = [], 1
    while n < cores:
        out.append(n)
        n *= 2
    return out + [cores]


def pick(ms_per_step: dict[int, float], margin: float = MARGIN) -> int:
    """The fewest threads whose step time is within `margin` of the fastest candidate's."""
    if not ms_per_step:
        raise ValueError("pick: no candidate was timed")
    best = min(ms_per_step.values())
    return min(n for n, ms in ms_per_step.items() if ms <= best * (1 + margin))


def check_requested(n: int | None) -> int | None:
    if n is not None and n < 1:
        raise ConfigError(f"--threads: expected an integer >= 1, got {n}")
    return n


def choose(cfg, device: torch.device, requested: int | None = None, source: str = "--threads") -> ThreadChoice:
    """Decide the trial's intra-op thread count and set it (torch.set_num_threads); `requested`, from
    `source` (--threads, a rerun's record), wins over any other rule."""
    if requested is not None:
        choice = ThreadChoice(check_requested(requested), source)
    elif os.environ.get("OMP_NUM_THREADS", "").strip().isdigit():
        choice = ThreadChoice(torch.get_num_threads(), "OMP_NUM_THREADS")
    elif device.type != "cpu":  # the network runs on the accelerator; host threads hardly matter
        choice = ThreadChoice(torch.get_num_threads(), f"device {device.type}")
    elif usable_cores() == 1:
        choice = ThreadChoice(1, "one core")
    else:
        choice = measure(workload(cfg, device), candidates(usable_cores()))
    torch.set_num_threads(choice.threads)
    return choice


def measure(step: Callable[[], None], counts: list[int], margin: float = MARGIN) -> ThreadChoice:
    """Time `step` under each thread count in turn, ROUNDS times over (so a neighbour that comes or
    goes, or a machine that warms up, weighs on every count alike); a count that cannot win stops early."""
    t0 = time.perf_counter()
    torch.set_num_threads(counts[0])  # not torch's default, which may be the count that collapses
    for _ in range(WARMUP_STEPS):  # the first steps allocate and pick kernels: no count should pay for that
        step()
    samples: dict[int, list[float]] = {n: [] for n in counts}
    cut: dict[int, float] = {}  # count cut short -> the least of its steps over the bar
    for _ in range(ROUNDS):
        for n in counts:
            if n not in cut:
                _time_round(step, n, samples, cut, margin)
    ms = {n: cut.get(n, statistics.median(samples[n]) if samples[n] else math.inf) for n in counts}
    return ThreadChoice(pick(ms, margin), "measured", ms, frozenset(cut), time.perf_counter() - t0)


def _time_round(step, n: int, samples: dict[int, list[float]], cut: dict[int, float], margin: float) -> None:
    """STEPS_PER_ROUND timed steps with n threads, after one that switches the pool to n. Once over
    half of n's planned samples are over the bar (the best other median × (1 + margin)), its median
    is over it whatever follows: n is cut, with the least of those samples as its lower bound. A
    collapse (one step can take seconds) is cut sooner: at the switch step if it is HOPELESS² times
    over the bar, else at a second step (the switch counts) HOPELESS times over it."""
    others = [statistics.median(v) for m, v in samples.items() if m != n and m not in cut and v]
    bar = min(others) * (1 + margin) if others else math.inf
    torch.set_num_threads(n)
    switch_ms = _time_ms(step)  # not a sample (the pool may start), but it can tell a collapse at once
    if switch_ms > HOPELESS ** 2 * bar:
        cut[n] = switch_ms
        return
    hopeless = int(switch_ms > HOPELESS * bar)
    for _ in range(STEPS_PER_ROUND):
        samples[n].append(_time_ms(step))
        over = [t for t in samples[n] if t > bar]
        if len(over) > ROUNDS * STEPS_PER_ROUND // 2 or hopeless + sum(t > HOPELESS * bar for t in over) >= 2:
            cut[n] = min(over)
            return


def _time_ms(step: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    step()
    return 1000 * (time.perf_counter() - t0)


def workload(cfg, device: torch.device) -> Callable[[], None]:
    """One step of what the trial spends its time on: a DIP step of its own network at its image size,
    or (a hybrid trial without DIP) one pass of its DDPM UNet, as a reverse-diffusion step makes."""
    size = cfg.data.size
    if cfg.dip is not None:
        from .loop import DipFitter

        fitter = DipFitter(cfg.dip, "threads", cfg.seed, size, device, compute=cfg.compute)
        target = torch.full((1, 3, size, size), 0.5, device=device)  # (1, C, H, W)
        return lambda: fitter.step(target)
    from .ddpm import build_unet

    with torch.random.fork_rng(devices=[]):  # module init draws from the global RNG
        unet = build_unet(cfg.ddpm, size).to(device).eval().requires_grad_(False)
    x, t = torch.zeros((1, 3, size, size), device=device), torch.tensor([10], device=device)

    def unet_step() -> None:
        with torch.no_grad():
            unet(x, t)

    return unet_step
