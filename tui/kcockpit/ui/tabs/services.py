"""The Services tab (placeholder): a live service map with golden signals, to come."""

from __future__ import annotations

from kcockpit.ui.tabs.placeholder import PlaceholderTab


class ServicesTab(PlaceholderTab):
    TAB_ID = "services"
    TITLE = "Services"
    HEADLINE = "Services — coming soon"
    DESCRIPTION = (
        "A live service map built from the flows you see here: who calls whom, request rate, "
        "error rate and latency per edge (golden signals from Hubble's Prometheus metrics), "
        "with drops and policy denials highlighted."
    )
