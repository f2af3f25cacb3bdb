"""Running sweeps: the spec (YAML -> trials), the Ray Tune runner, the trainable, the hub on the
driver's node, the live view and W&B logging. Imports the report half (the closing report) and common."""
