"""The formats a report is written in, and the files they go to (the command line's --format choices)."""

FORMATS = ("all", "table", "markdown", "csv", "curves", "json", "html")
FILES = {"markdown": "report.md", "csv": "results.csv", "curves": "curves.csv", "json": "report.json",
         "html": "report.html"}
