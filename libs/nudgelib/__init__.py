"""Shared code of the Nudge services: config, logging, database, server bootstrap, auth,
metrics and gRPC clients. Generated protobuf code lives beside it in the `nudge` package."""
