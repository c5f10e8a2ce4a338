"""What the status bar says, composed to fit a width (no Textual here).

Each part has a priority; on a narrow terminal the least important parts go first, so
the connection state and follow/paused are always visible.
"""

from __future__ import annotations

from dataclasses import dataclass

SEPARATOR = " │ "


@dataclass(slots=True)
class StatusInfo:
    source: str  # "demo 127.0.0.1:4245", "localhost:4245", "file flows.json"
    state: str  # "connecting", "live", "retrying", "offline", "stopped"
    state_detail: str = ""  # "in 3 s: connection refused", ...
    flows_per_second: float | None = None
    nodes: tuple[int, int] | None = None  # connected, total
    retained: int = 0
    evicted: int = 0
    lost: int = 0
    follow: bool = True
    new_while_paused: int = 0
    filter_text: str = ""
    shown: int = 0  # rows in the view after filtering
    busy: str = ""  # "filtering…" while a re-filter runs
    scenario: str = ""  # demo only: "scenario broken (34 s left)"
    extra: tuple[Part, ...] = ()  # other sources: "k8s ✓ 4 policies", "prom ✗ refused"


@dataclass(frozen=True, slots=True)
class Part:
    text: str
    style: str  # a key the widget maps to a style: "state-live", "paused", "plain", ...
    priority: int  # 1 = always shown; higher numbers are dropped first


def compact_count(value: float) -> str:
    """12 -> "12", 12345 -> "12.3k", 2500000 -> "2.5M"."""
    if value < 1000:
        return f"{value:.0f}"
    if value < 1_000_000:
        return f"{value / 1000:.1f}k"
    return f"{value / 1_000_000:.1f}M"


def status_parts(info: StatusInfo) -> list[Part]:
    state = info.state + (f" {info.state_detail}" if info.state_detail else "")
    parts = [Part(f"● {state}", f"state-{info.state}", 1), Part(info.source, "plain", 5)]
    if info.scenario:
        parts.append(Part(info.scenario, "scenario", 2))
    if info.flows_per_second is not None:
        parts.append(Part(f"{compact_count(info.flows_per_second)} flows/s", "plain", 2))
    if info.nodes is not None:
        connected, total = info.nodes
        parts.append(Part(f"nodes {connected}/{total}", "plain" if connected == total else "warning", 3))
    parts.extend(info.extra)
    parts.append(Part(f"{compact_count(info.shown)} shown/{compact_count(info.retained)} kept", "plain", 4))
    if info.evicted:
        parts.append(Part(f"{compact_count(info.evicted)} evicted", "plain", 6))
    if info.lost:
        parts.append(Part(f"{compact_count(info.lost)} lost", "warning", 5))
    if info.busy:
        parts.append(Part(info.busy, "warning", 1))
    if info.follow:
        parts.append(Part("▶ follow", "follow", 1))
    else:
        parts.append(Part(f"PAUSED +{compact_count(info.new_while_paused)} new", "paused", 1))
    if info.filter_text:
        parts.append(Part(f"filter: {info.filter_text}", "filter", 7))
    return parts


def fit_parts(parts: list[Part], width: int) -> list[Part]:
    """Drop the least important parts until the line fits; shorten the longest if still too long."""
    kept = list(parts)

    def length(items: list[Part]) -> int:
        return sum(len(p.text) for p in items) + len(SEPARATOR) * (len(items) - 1) + 1

    while length(kept) > width and any(p.priority > 1 for p in kept):
        worst = max(range(len(kept)), key=lambda i: (kept[i].priority, i))
        del kept[worst]
    overflow = length(kept) - width
    if overflow > 0 and kept:
        # Still too long: shorten the longest part (usually an error message).
        longest = max(range(len(kept)), key=lambda i: len(kept[i].text))
        part = kept[longest]
        keep = max(1, len(part.text) - overflow - 1)
        kept[longest] = Part(part.text[:keep] + "…", part.style, part.priority)
    return kept
