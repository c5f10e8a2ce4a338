"""The application layer: what the cockpit does, below any user interface.

A `Session` owns the flow store and whatever fills it (a Hubble server, the embedded demo,
a capture file) and carries the `Integrations` (policy data, Prometheus) and the aggregate
feed that fills the tabs' tables. `report` runs the same aggregates without a screen.
Nothing here imports Textual or Rich.
"""
