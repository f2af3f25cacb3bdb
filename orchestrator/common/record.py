"""A trial's record: the one type every reader uses, built and read in one place.

A record is one JSON line of results.jsonl. `Record.from_dict` is the only reader: it
upgrades lines written by earlier versions (no cell key, no cell, no sweep) the one
way every table then sees, and sets aside what a damaged or crafted line holds where a
number belongs (a string PSNR, a NaN): such a value is dropped from the record's
metrics, named in `damaged`, and left out of whatever it cannot serve, never a crash.
`Record.failed` is the one constructor of a failed record (a config error inside a
trial, a worker that died, a trial past its timeout), whoever notices the failure.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, fields

STATUSES = ("ok", "diverged", "failed")
_CORE = ("trial_key", "status", "method", "seed", "config", "sweep", "profile", "error", "cell", "cell_key", "images",
         "metrics", "per_image", "versions")


@dataclass(frozen=True)
class Record:
    trial_key: str
    status: str  # ok | diverged | failed
    method: str
    seed: int
    config: dict  # the trial's canonical config (what `python -m dipddpm run --config` reruns)
    sweep: str | None = None
    profile: str | None = None
    error: str | None = None
    cell: dict = field(default_factory=dict)  # the grid cell's axis values (dotted keys)
    cell_key: str = ""  # the config without its seed, hashed: the seeds of one cell share it
    images: dict = field(default_factory=dict)  # {"test": [{id, source, sha256}], "pool": [...]}
    metrics: dict = field(default_factory=dict)  # trial figures (means over images; times per trial)
    per_image: dict = field(default_factory=dict)  # image -> its figures
    versions: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # what else the trial wrote: wandb_run, node, transfer, warnings, …
    damaged: tuple[str, ...] = ()  # "metrics.psnr", "per_image.coffee.psnr_es": values dropped on reading

    # ------------------------------------------------------------------ reading and writing

    @classmethod
    def from_dict(cls, d: dict) -> "Record":
        """A record from its JSON object (a ValueError when it is not one), upgraded to this version."""
        if not isinstance(d, dict) or d.get("status") not in STATUSES or not isinstance(d.get("config"), dict):
            raise ValueError("not a trial record (no status or config)")
        config = d["config"]
        damaged: list[str] = []
        metrics = _numbers(d.get("metrics"), "metrics", damaged)
        per_image = {str(img): _numbers(m, f"per_image.{img}", damaged)
                     for img, m in (d.get("per_image") or {}).items() if isinstance(m, dict)}
        seed = d.get("seed", config.get("seed", 0))
        return cls(
            trial_key=d.get("trial_key"), status=d["status"], method=d.get("method") or config.get("method"),
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else 0,
            config=config, sweep=d.get("sweep"), profile=d.get("profile"), error=d.get("error"),
            cell=d.get("cell") if isinstance(d.get("cell"), dict) else {},
            cell_key=d.get("cell_key") or config_cell_key(config),
            images=d.get("images") if isinstance(d.get("images"), dict) else {},
            metrics=metrics, per_image=per_image,
            versions=d.get("versions") if isinstance(d.get("versions"), dict) else {},
            extra={k: v for k, v in d.items() if k not in _CORE}, damaged=tuple(damaged))

    def as_dict(self) -> dict:
        """The JSON object this record is written as."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name in _CORE}
        return out | self.extra

    @classmethod
    def failed(cls, *, trial_key: str, sweep: str, profile: str, config: dict, cell: dict, cell_key: str,
               images: dict, error: str, versions: dict, **extra) -> "Record":
        """A trial that ended without a result: what ran, and why it stopped, in one line."""
        lines = [line for line in str(error).strip().splitlines() if line.strip()]
        return cls(trial_key=trial_key, status="failed", method=config.get("method"), seed=config.get("seed", 0),
                   config=config, sweep=sweep, profile=profile, error=(lines[-1] if lines else "error")[:500],
                   cell=cell, cell_key=cell_key, images=images, versions=versions, extra=extra)

    # ------------------------------------------------------------------ what readers ask

    @property
    def fault(self) -> bool:
        """A failure that was the orchestrator's own (its hub lost), not the trial's: it counts against no arm."""
        return self.status == "failed" and self.extra.get("fault") == "orchestrator"

    @property
    def usable(self) -> bool:
        """ok, or diverged (counted with its last good estimate)."""
        return self.status in ("ok", "diverged")

    @property
    def cost_s(self) -> float | None:
        """Seconds the trial would take cold: its attributed cost (`time_s`: a cached DDPM or DIP estimate is
        charged what it took to make), or its wall time where that is longer; None when neither is measured.
        A trial that found its artefacts cached ran in a second or two: its wall time says nothing of the
        next seed, which has to make them."""
        got = [v for v in (self.metrics.get("time_s"), self.metrics.get("wall_s"))
               if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0]
        return float(max(got)) if got else None

    def add_cost(self, costs: dict[str, list[float]]) -> None:
        """Append this trial's `cost_s` to its cell's list in `costs` (a failed trial's time says nothing of
        what a good one takes, so only a usable trial counts): the per-cell costs the searcher allocates by
        and the recorder times trials out by."""
        if self.usable and self.cost_s is not None:
            costs.setdefault(self.cell_key, []).append(self.cost_s)

    @property
    def tags(self) -> tuple[str, ...]:
        """ORACLE / FLOOR, as the trial's method says of its config."""
        from dipddpm.methods import tags_of

        return tags_of(self.config)

    @property
    def test_ids(self) -> list[str]:
        """The test images' ids, in config order."""
        return [i.get("id") for i in self.images.get("test", []) if isinstance(i, dict)] or list(self.per_image)

    def value(self, metric: str, image: str | None = None):
        """A trial figure, or one image's (None when missing or set aside as damaged)."""
        return self.per_image.get(image, {}).get(metric) if image is not None else self.metrics.get(metric)


def config_cell_key(config: dict) -> str:
    """The cell key of a record written before records kept theirs: its config without the seed, hashed."""
    cfg = {k: v for k, v in config.items() if k != "seed"}
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]


def _numbers(raw, where: str, damaged: list[str]) -> dict:
    """A record's figures, keeping numbers, flags, lists and nulls; a string, object or non-finite number where
    a figure belongs is dropped and named in `damaged`."""
    if not isinstance(raw, dict):
        return {}
    out = {}
    for k, v in raw.items():
        if v is None or isinstance(v, (bool, list)):
            out[k] = v
        elif isinstance(v, (int, float)) and math.isfinite(v):
            out[k] = v
        else:
            damaged.append(f"{where}.{k}")
    return out
