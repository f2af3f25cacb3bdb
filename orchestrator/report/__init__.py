"""Turning finished records into answers: pairing, statistics, tables, claims' verdicts, figures,
Markdown/CSV/JSON/HTML and the W&B report. Reads results.jsonl alone; imports common, never the sweep half."""
