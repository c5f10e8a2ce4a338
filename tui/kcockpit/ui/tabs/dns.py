"""The DNS tab (placeholder): lookups grouped by client and name, to come."""

from __future__ import annotations

from kcockpit.ui.tabs.placeholder import PlaceholderTab


class DnsTab(PlaceholderTab):
    TAB_ID = "dns"
    TITLE = "DNS"
    HEADLINE = "DNS — coming soon"
    DESCRIPTION = (
        "Every DNS lookup from the flow stream grouped by client and name: NXDOMAIN and SERVFAIL "
        "rates, the ndots search-path expansions, and lookups dropped by policy before they "
        "reach kube-dns."
    )
