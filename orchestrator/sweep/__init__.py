"""Running sweeps: the spec (YAML -> SweepSpec) and its plan (-> trials), the Ray Tune runner, the searcher
that proposes the next trial, the trainable, the hub on the driver's node, the recorder (the one writer of
results.jsonl) and the live view. Imports wandb_io, report, stats and common; nothing imports it."""
