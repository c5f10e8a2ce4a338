"""Flow aggregates: services edges, DNS lookups and policy verdicts over time windows,
computed once per flow and read by every tab and by `kcockpit report` (see flow_aggregates)."""

from kcockpit.model.aggregates.accumulator import Accumulator, Delta
from kcockpit.model.aggregates.flow_aggregates import FlowAggregates
from kcockpit.model.aggregates.naming import OTHER, Endpoint
from kcockpit.model.aggregates.rows import DnsRow, PolicyGroup, ServiceEdge, Window, rfc3339, window_label
from kcockpit.model.aggregates.sketch import LatencySketch
from kcockpit.model.aggregates.table import WINDOWS_S

__all__ = [
    "Accumulator", "Delta", "DnsRow", "Endpoint", "FlowAggregates", "LatencySketch", "OTHER",
    "PolicyGroup", "ServiceEdge", "WINDOWS_S", "Window", "rfc3339", "window_label",
]
