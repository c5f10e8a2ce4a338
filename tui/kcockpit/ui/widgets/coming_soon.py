"""ComingSoon: the placeholder of a tab that is not built yet, saying what it will show.

No sample data on purpose: a cockpit must never show numbers it did not measure.
"""

from __future__ import annotations

from textual.widgets import Static

COMING_SOON = {
    "services": (
        "Services — coming soon",
        "A live service map built from the flows you see here: who calls whom, request rate, "
        "error rate and latency per edge (golden signals from Hubble's Prometheus metrics), "
        "with drops and policy denials highlighted.",
    ),
    "dns": (
        "DNS — coming soon",
        "Every DNS lookup from the flow stream grouped by client and name: NXDOMAIN and SERVFAIL "
        "rates, the ndots search-path expansions, and lookups dropped by policy before they "
        "reach kube-dns.",
    ),
    "policies": (
        "Policies — coming soon",
        "The NetworkPolicies that select each workload, why a flow was allowed or denied "
        "(the rule that matched), and a least-privilege policy suggested from observed traffic.",
    ),
}


class ComingSoon(Static):
    DEFAULT_CSS = """
    ComingSoon {
        width: 1fr; height: 1fr; content-align: center middle; padding: 1 4;
        color: $text-muted;
    }
    """

    def __init__(self, tab_id: str) -> None:
        title, body = COMING_SOON[tab_id]
        super().__init__(
            f"[b $text-primary]{title}[/]\n\n{body}\n\n[dim]Nothing here is simulated: this tab is not built yet.[/]",
            id=tab_id,
        )
