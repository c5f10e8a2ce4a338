"""The registry of the main screen's tabs, in tab bar order.

Adding a tab: write its module (a `CockpitTab` subclass) and add one line to TABS. The
shell builds the tab bar, the tab bodies, the number keys and tab/shift+tab from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kcockpit.ui.tabs.base import CockpitTab, Legend, TabContext
from kcockpit.ui.tabs.dns import DnsTab
from kcockpit.ui.tabs.flows import FlowsTab
from kcockpit.ui.tabs.policies import PoliciesTab
from kcockpit.ui.tabs.services import ServicesTab


@dataclass(frozen=True, slots=True)
class TabSpec:
    id: str  # the tab widget's id, and the ContentSwitcher's name for it
    title: str  # shown in the tab bar
    key: str  # the key that shows it
    cls: type[CockpitTab]

    @classmethod
    def of(cls, tab: type[CockpitTab], key: str) -> TabSpec:
        return cls(tab.TAB_ID, tab.TITLE, key, tab)


TABS: tuple[TabSpec, ...] = (
    TabSpec.of(FlowsTab, "1"),
    TabSpec.of(ServicesTab, "2"),
    TabSpec.of(DnsTab, "3"),
    TabSpec.of(PoliciesTab, "4"),
)

assert len({spec.id for spec in TABS}) == len(TABS), "tab ids must be unique"
assert len({spec.key for spec in TABS}) == len(TABS), "tab keys must be unique"

__all__ = ["TABS", "CockpitTab", "Legend", "TabContext", "TabSpec"]
