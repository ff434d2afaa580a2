"""Prefect tasks: one module per system. Tasks take a block and plain data, return plain data,
and retry only what is transient (see ``tasks.faults``)."""
