"""The Policies tab (placeholder): the policies of each workload and why, to come."""

from __future__ import annotations

from kcockpit.ui.tabs.placeholder import PlaceholderTab


class PoliciesTab(PlaceholderTab):
    TAB_ID = "policies"
    TITLE = "Policies"
    HEADLINE = "Policies — coming soon"
    DESCRIPTION = (
        "The NetworkPolicies that select each workload, why a flow was allowed or denied "
        "(the rule that matched), and a least-privilege policy suggested from observed traffic."
    )
