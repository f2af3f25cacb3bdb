"""The report's views: tables (`tables.py`, `claims_table.py`), text and CSV (`text.py`), the HTML page
(`html.py`), figures (`figures.py`), the summary that heads them (`summary.py`), and the builder that reads a
run folder and writes them (`build.py`). Reads results.jsonl alone; the statistics are `orchestrator.stats`."""
