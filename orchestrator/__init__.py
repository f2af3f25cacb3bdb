"""The orchestrator: sweeps on Ray Tune, W&B logging, results store, reports (grows in later issues)."""
