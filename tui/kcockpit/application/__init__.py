"""The application layer: what the cockpit does, below any user interface.

A `Session` owns the flow store and whatever fills it (a Hubble server, the embedded demo,
a capture file) and carries the `Integrations` (policy data, Prometheus). Nothing here
imports Textual or Rich; the UI calls these objects and reads the store.
"""
