"""The one log engine: a producer's table read as a log by lane and position, forwarded to
its consumers at least once and in order per lane, and applied once by each consumer.

- `horizon`: how far a reader may read without passing over an item that commits later.
- `positions`: the consumer's side, the last position applied per (source, app, lane).
- `ordered`: pure rules for sending a run in order when a consumer refuses one of its items.
- `dispatcher`: the reader loops (claims across replicas, batches by count and bytes, holds
  of failing apps, dead letters, metrics).
"""
