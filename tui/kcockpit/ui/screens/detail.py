"""FlowDetailScreen: every set field of one flow, its jsonpb, and the matching `hubble observe`.

With policy data (the session's integrations), a "Policy verdict" section explains the
flow with the policy engine, cross-checks Hubble, and for a denied flow shows the minimal
fix as YAML to copy (OSC 52) or save. Policy-relevant flows (dropped by policy, verdict
events, flows Hubble names policies for) get it first; the rest after their fields.
Dismisses with a filter text when the user jumps to related flows ("between these two
workloads", "only drops of this source"), or with None on esc.
"""

from __future__ import annotations

from dataclasses import dataclass

from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Static

from kcockpit.model.filterlang import parse_filter
from kcockpit.model.hubble_cli import filter_for_flow_peers, filter_for_source_drops, hubble_observe_command
from kcockpit.model.record import UNREADABLE, FlowBytesLost, FlowRecord
from kcockpit.ui.columns import format_port, format_time
from kcockpit.model.flow_fields import flow_jsonpb, flow_sections
from kcockpit.ui.policy_view import (
    PolicyExplanation,
    explain_record,
    fix_document,
    opens_text,
    policy_relevant,
    save_fix,
    verdict_style,
)
from kcockpit.ui.widgets.status_bar import StatusBar
from kcockpit.ui.printable import printable
from kcockpit.ui.export import default_export_dir
from kcockpit.ui.screens.scrolling import scroll, scroll_bindings

if TYPE_CHECKING:
    from kcockpit.application.integrations import PolicyFeed
    from kcockpit.ui.app import CockpitApp

_VERDICT_STYLE = {"FORWARDED": "bold $text-success", "DROPPED": "bold $text-error", "ERROR": "bold $text-error", "AUDIT": "bold $text-warning"}
_VERDICT_CLASS = {"FORWARDED": "-good", "DROPPED": "-bad", "ERROR": "-bad", "AUDIT": "-warn"}
WIDE = 150  # columns from which the command and jsonpb get a column of their own
POLICY_RECHECK_S = 1.0  # how often an open detail looks for new policy data (a watch event)
_BAD_LABELS = {"drop reason", "egress denied by", "ingress denied by"}


def _value_class(label: str, value: str) -> str:
    """Colour what tells the story: the verdict, why it was dropped, failed lookups."""
    if label == "verdict":
        return _VERDICT_CLASS.get(value, "")
    if label in _BAD_LABELS or (label == "rcode" and value != "NOERROR"):
        return "-bad"
    return ""


class FlowDetailScreen(Screen["DetailJump | None"]):
    BINDINGS = [
        Binding("escape", "back", "Back", id="detail.back"),
        # The fix keys come first: on a drop they are the story, and at 80 columns the footer ends early.
        Binding("f", "copy_fix", "Copy fix", tooltip="copy the proposed policy fix as YAML (OSC 52)", id="detail.copy_fix"),
        Binding("s", "save_fix", "Save fix", tooltip="save the proposed policy fix as YAML in --export-dir", id="detail.save_fix"),
        Binding("a", "next_fix", "Next fix", tooltip="show the next alternative fix (patch, new policy, Cilium policy)", id="detail.next_fix"),
        Binding("w", "jump('peers')", "Between", tooltip="narrow the flow list to the flows between these two workloads", id="detail.peers"),
        Binding("d", "jump('drops')", "Drops", tooltip="only the drops of this source", id="detail.source_drops"),
        Binding("c", "copy_json", "JSON", tooltip="copy the flow as jsonpb (OSC 52)", id="detail.copy_json"),
        Binding("y", "copy_command", "Command", tooltip="copy the hubble observe command (OSC 52)", id="detail.copy_command"),
        *scroll_bindings("detail"),
        Binding("question_mark", "app.help", "Help", key_display="?", show=False, id="detail.help"),
    ]

    DEFAULT_CSS = """
    FlowDetailScreen {
        & > #detail-title { height: 1; background: $panel; padding: 0 1; }
        & #detail-body { background: $surface; padding: 0 1; scrollbar-size-vertical: 1; }
        & .detail-heading { color: $text-primary; text-style: bold; margin-top: 1; }
        & .detail-section { color: $text-primary; text-style: bold; }
        & .detail-row { height: auto; }
        & .detail-label { width: 21; padding-left: 2; color: $text-muted; }
        & .detail-value { width: 1fr; }
        & .detail-value.-bad { color: $text-error; text-style: bold; }
        & .detail-value.-good { color: $text-success; text-style: bold; }
        & .detail-value.-warn { color: $text-warning; text-style: bold; }
        & .detail-command { background: $boost; padding: 0 1; }
        & .detail-json { color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
        & #policy-section { height: auto; }
        & .detail-yaml { background: $boost; padding: 0 1; margin-left: 2; color: $text; text-wrap: nowrap; text-overflow: ellipsis; }
        & #detail-columns { height: 1fr; }
        & #detail-side { display: none; }
        /* Wide terminals: the command and the jsonpb move to a column of their own. */
        &.-wide #detail-side { display: block; width: 1fr; background: $surface; padding: 0 1;
                               border-left: vkey $panel; scrollbar-size-vertical: 1; }
        &.-wide #detail-body { width: 1fr; }
        &.-wide #detail-body > .detail-extra { display: none; }
    }
    """

    def __init__(self, record: FlowRecord, zone: tzinfo | None = None) -> None:
        super().__init__()
        self.record = record
        self.zone = zone
        # Stored bytes that cannot be read back (a damaged compressed block): one line says
        # so; there are no fields, jsonpb, related flows or policy verdict to show.
        self.lost = _lost(record)
        if self.lost:
            self.peers_filter = self.drops_filter = self.command = self.jsonpb = ""
            self.explanation = self.policy_shown = None
            self.fix_index = 0
            self._policy_generation = None
            return
        self.peers_filter = filter_for_flow_peers(record)
        self.drops_filter = filter_for_source_drops(record)
        self.command = hubble_observe_command(parse_filter(self.peers_filter))
        self.jsonpb = flow_jsonpb(record)
        self.explanation: PolicyExplanation | None = None
        # What the policy section displays now; it trails `explanation` while widgets remount.
        self.policy_shown: PolicyExplanation | None = None
        self.fix_index = 0
        self._policy_generation: int | None = None

    def _cockpit(self) -> CockpitApp | None:
        """The cockpit this screen runs in (None in a bare test app)."""
        from kcockpit.ui.app import CockpitApp

        return self.app if isinstance(self.app, CockpitApp) else None

    @property
    def _policy_feed(self) -> PolicyFeed | None:
        cockpit = self._cockpit()
        integrations = cockpit.session.integrations if cockpit is not None else None
        return integrations.policy if integrations is not None else None

    def _policy_placement(self) -> str:
        """"first" or "" (no section): with policy data every flow is explained, first thing
        under the title (found by a newcomer: placed after every field, an ordinary flow's
        verdict was below the screen at 80x24 and looked missing); without policy data, only
        flows that are about policies say why there is none."""
        feed = self._policy_feed
        if feed is None or self.lost:
            return ""
        if policy_relevant(self.record) or feed.data().cluster is not None:
            return "first"
        return ""

    def compose(self) -> ComposeResult:
        record = self.record
        verdict = record.verdict_name
        title = Content.assemble(
            Content.styled("Flow ", "bold"),
            Content.styled(f" {verdict} ", _VERDICT_STYLE.get(verdict, "bold") + " reverse"),
            " ",
            Content(UNREADABLE if self.lost else printable(
                f"{record.source.workload_name()} → {record.destination.workload_name()} {format_port(record)}"
            )),
        )
        yield Static(title, id="detail-title")
        if self.lost:
            with VerticalScroll(id="detail-body"):
                yield Static(printable(self.lost), id="detail-lost", classes="detail-value -bad", markup=False)
            yield StatusBar()
            yield Footer(show_command_palette=False)
            return
        with Horizontal(id="detail-columns"):
            with VerticalScroll(id="detail-body"):
                placement = self._policy_placement()
                if placement == "first":
                    yield Vertical(id="policy-section")
                yield from self._fields(first=placement != "first")
                if placement == "last":
                    yield Vertical(id="policy-section")
                yield from self._extras("detail-extra")
            with VerticalScroll(id="detail-side"):
                yield from self._extras("")
        yield StatusBar()
        yield Footer(show_command_palette=False)

    def _extras(self, classes: str) -> ComposeResult:
        """The `hubble observe` command and the jsonpb: under the fields, or beside them."""
        yield Static("Flows like this (hubble observe)", classes=f"detail-heading {classes}".strip())
        yield Static(Content(printable(self.command, keep_newlines=True)), classes=f"detail-command {classes}".strip())
        yield Static("jsonpb (GetFlowsResponse)", classes=f"detail-heading {classes}".strip())
        yield Static(Content(printable(self.jsonpb, keep_newlines=True)), classes=f"detail-json {classes}".strip())

    def _fields(self, first: bool = True) -> ComposeResult:
        """One row per set field: label on the left, the value wrapping in its own column."""
        for title, rows in flow_sections(self.record, self.zone):
            if not rows:
                continue
            yield Static(title, classes="detail-section" if first else "detail-section detail-heading", markup=False)
            first = False
            for label, value in rows:
                yield _row(label, value, _value_class(label, value))

    # --- policy verdict ------------------------------------------------------------

    def _policy_widgets(self) -> list[Static | Horizontal]:
        heading = Static("Policy verdict", classes="detail-section", markup=False)
        if self._policy_placement() == "last":
            heading.add_class("detail-heading")
        widgets: list[Static | Horizontal] = [heading]
        feed = self._policy_feed
        explanation = self.explanation
        if explanation is None:
            data = feed.data() if feed is not None else None
            reason = data.reason if data is not None and data.cluster is None else "evaluating…"
            widgets.append(_row("policy", reason, "-warn" if data is not None and data.cluster is None else ""))
            return widgets
        widgets.append(_row("engine", explanation.sentence, verdict_style(explanation.verdict)))
        if explanation.caveat:
            widgets.append(_row("caveat", explanation.caveat, "-warn"))
        widgets.append(_row("sides", "\n".join(explanation.details), ""))
        widgets.append(_row("hubble", explanation.hubble, "" if explanation.hubble_agrees else "-bad"))
        for advice in explanation.advice:
            widgets.append(_row("advice", advice, "-warn"))
        if explanation.fixes:
            fixes = explanation.fixes
            proposal = fixes[self.fix_index % len(fixes)]
            keys = "f copy · s save" + (" · a next" if len(fixes) > 1 else "")
            label = f"fix {self.fix_index % len(fixes) + 1}/{len(fixes)}"
            widgets.append(_row(label, f"{proposal.title}  ({keys})", "-good" if proposal.verified else "-warn"))
            widgets.append(_row("blast radius", opens_text(proposal), ""))
            widgets.append(Static(printable(proposal.yaml().rstrip("\n"), keep_newlines=True), classes="detail-yaml", markup=False))
        return widgets

    async def _show_policy(self) -> None:
        section = self.query("#policy-section")
        if not section:
            return
        explanation = self.explanation
        await section.first().remove_children()
        await section.first().mount_all(self._policy_widgets())
        self.policy_shown = explanation
        self.refresh_bindings()

    def _check_policy(self) -> None:
        """Evaluate when policy data arrived or changed (a watch event) since the last time."""
        feed = self._policy_feed
        if feed is None or not self.query("#policy-section"):
            return
        data = feed.data()
        if data.generation == self._policy_generation and (data.cluster is not None or self.explanation is None):
            return
        self._policy_generation = data.generation
        if data.cluster is None:
            self.explanation = None
            self.call_later(self._show_policy)
        else:
            self._evaluate(data)

    @work(thread=True, exclusive=True, group="policy")
    def _evaluate(self, data) -> None:
        try:
            explanation = explain_record(self.record, data)
        except Exception as error:  # noqa: BLE001 - a flow the engine cannot take must not break the screen
            explanation = PolicyExplanation("not-evaluated", f"the policy engine failed on this flow: {error}", (), "", True, (), ())
        self.app.call_from_thread(self._explained, explanation)

    async def _explained(self, explanation: PolicyExplanation) -> None:
        if not self.is_mounted:
            return
        self.explanation = explanation
        await self._show_policy()

    def _fix(self):
        explanation = self.explanation
        if explanation is None or not explanation.fixes:
            return None
        return explanation.fixes[self.fix_index % len(explanation.fixes)]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.lost and action in ("jump", "copy_json", "copy_command"):
            return False
        if action in ("copy_fix", "save_fix"):
            return self._fix() is not None
        if action == "next_fix":
            return self.explanation is not None and len(self.explanation.fixes) > 1
        return True

    def action_copy_fix(self) -> None:
        proposal = self._fix()
        if proposal is not None:
            self.app.copy_to_clipboard(fix_document(proposal))
            self.notify(f"fix copied to the clipboard (OSC 52): {proposal.title}", timeout=3, markup=False)

    def action_save_fix(self) -> None:
        proposal = self._fix()
        if proposal is None:
            return
        cockpit = self._cockpit()
        directory = cockpit.context.export_dir if cockpit is not None else default_export_dir()
        try:
            path = save_fix(proposal, Path(directory))
        except OSError as error:
            self.notify(f"cannot save the fix in {directory}: {error.strerror or error}", severity="error", markup=False)
            return
        self.notify(f"fix saved to {path}", title="Fix", timeout=5, markup=False)

    async def action_next_fix(self) -> None:
        if self.explanation is not None and self.explanation.fixes:
            self.fix_index = (self.fix_index + 1) % len(self.explanation.fixes)
            await self._show_policy()

    async def on_mount(self) -> None:
        if self.query("#policy-section"):
            await self._show_policy()
            self._check_policy()
            self.set_interval(POLICY_RECHECK_S, self._check_policy)
        self.set_class(self.app.size.width >= WIDE, "-wide")
        self.query_one("#detail-body").focus()
        main_bar = self.app.screen_stack[0].query(StatusBar)
        if main_bar and main_bar.first().info is not None:
            self.query_one(StatusBar).show(main_bar.first().info)

    def on_resize(self) -> None:
        self.set_class(self.size.width >= WIDE, "-wide")
        cockpit = self._cockpit()
        if cockpit is not None:
            cockpit.check_size()

    def action_back(self) -> None:
        self.dismiss(None)

    def action_jump(self, target: str) -> None:
        if target == "peers":
            self.dismiss(DetailJump(self.peers_filter, narrow=True))
        else:
            self.dismiss(DetailJump(self.drops_filter, narrow=False))

    def action_copy_json(self) -> None:
        self.app.copy_to_clipboard(flow_jsonpb(self.record, indent=None))
        self.notify("jsonpb copied to the clipboard (OSC 52)", timeout=2)

    def action_copy_command(self) -> None:
        self.app.copy_to_clipboard(self.command)
        self.notify("hubble observe command copied to the clipboard (OSC 52)", timeout=2)

    def action_scroll(self, where: str) -> None:
        scroll(self.query_one("#detail-body", VerticalScroll), where)


@dataclass(frozen=True, slots=True)
class DetailJump:
    """What the detail view asks the flow list to show: `narrow` combines it with the
    active filter, otherwise it replaces it."""

    filter_text: str
    narrow: bool

    def __bool__(self) -> bool:
        return bool(self.filter_text)


def _lost(record: FlowRecord) -> str:
    """"" when the record's bytes can be read, else one line saying what is left of it."""
    try:
        record.raw
    except FlowBytesLost as error:
        when = format_time(record.time_ns, None)
        return f"{error}. Only its time ({when}), verdict and node ({record.node or '?'}) are known."
    return ""


def _row(label: str, value: str, value_class: str) -> Horizontal:
    """Label on the left, the value wrapping in its own column."""
    return Horizontal(
        Static(label, classes="detail-label", markup=False),
        Static(printable(value, keep_newlines=True), classes=f"detail-value {value_class}".strip(), markup=False),
        classes="detail-row",
    )

