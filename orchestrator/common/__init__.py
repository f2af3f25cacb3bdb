"""What both halves use: the results store and record format, metric names, W&B run naming and
mode, and the claims a sweep states. Imports only dipddpm; the sweep and report halves import it."""
