"""What every layer above reads: a trial's record and the results store, the sweep's design (sweep.json),
the claims a sweep states, metric facts and labels. Imports only dipddpm."""
