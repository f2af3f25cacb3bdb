"""Everything that speaks to Weights & Biases: run names and modes (`naming`), a trial's offline run
(`trial_log`), uploads from the driver (`sync`), reading an offline run file (`run_file`), and the sweep's
summary run and W&B Report (`publish`). Above the report (it publishes its tables), below the sweep (whose
trials log through it). A W&B failure never costs a local result."""
