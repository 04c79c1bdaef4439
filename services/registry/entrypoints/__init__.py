"""The edges of a registry node: the operator REST API, the CLI, later the bus.

Each entrypoint parses its input, calls one application handler through the
``Node`` built by ``registry.bootstrap``, and maps errors at the edge.
"""
