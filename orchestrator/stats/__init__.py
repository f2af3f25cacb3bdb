"""The statistics engine: units of replication, pairing, intervals and tests, confidence sequences, and the
verdicts of a sweep's claims (one row type, a fixed-grid and a sequential evaluator). Below both the sweep
(its searcher reads the sequential evaluator) and the report (its tables show the rows). Imports common."""
