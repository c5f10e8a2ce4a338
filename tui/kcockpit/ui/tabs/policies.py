"""The Policies tab: what the policies are doing right now.

Three views over the window's policy verdict groups (the aggregates), each group evaluated
once per policy-data change by `application.policy_insights` on a thread:

- Verdicts (`v`): drops first, then audit ("would be dropped in enforce mode"), then
  allowed; the deciding policy and rule, counts, and whether the engine agrees with Hubble.
- Policies (`p`): every policy with the pods it selects, its flows and each rule's hits;
  unused rules, policies selecting no pod and workloads no policy selects are marked.
- Drift (`d`): the groups where the engine and Hubble disagree or the engine cannot decide.

`enter` opens a group's sample flow in the flow detail (explanation and fixes) or a
policy's YAML with its hits; `w` replays the window through the first fix of a drop
(what-if, `a` next fix), `o` through a manifest file, `A` advises a least-privilege policy.
This module only draws; the answers come from the application layer.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from kcockpit.application.status import StatusInfo
from kcockpit.model.aggregates import window_label
from kcockpit.model.record import FlowRecord
from kcockpit.ui.printable import printable
from kcockpit.ui.tabs.base import CockpitTab, Legend, TabContext



class _LazyInsights:
    """`kcockpit.application.policy_insights`, imported at its first use (the tab computes
    only once shown): it loads the policy engine, 0.1 s that the first frame does without."""

    def __getattr__(self, name: str):
        from kcockpit.application import policy_insights

        return getattr(policy_insights, name)


pi = _LazyInsights()

VIEWS = ("verdicts", "policies", "drift")
WINDOWS = (300, 900, 60, None)
WIDE = 160  # from here a verdict group is one line, below two
_VERDICT_STYLE = {"DROPPED": "bold $text-error", "AUDIT": "bold $text-warning", "FORWARDED": "bold $text-success"}
_CHECK_STYLE = {"agrees": "$text-success", "drift": "bold $text-error", "not-evaluated": "$text-warning"}  # by pi.AGREES, ...

LEGEND: Legend = (
    ("✓", "the policy engine agrees with Hubble's verdict for this group"),
    ("✗ drift", "they disagree: the policy data or the engine's model is not what the cluster does (Drift view: why)"),
    ("? not evaluated", "the engine cannot decide (an L7 rule, no policy data, ...): the reason is shown"),
    ("AUDIT", "audit mode: Cilium let it through and says it would be DROPPED in enforce mode"),
    ("default deny", "the policy isolates the pod and none of its rules allows this: the implicit deny"),
    ("hits", "flows in the window decided by that rule (counted per verdict group, from Hubble's flows)"),
    ("(engine)", "Hubble named no policy for the group: the deciding policy is the engine's answer"),
    ("⚠ unused", "a rule with no hit in the window, a policy selecting no pod, a workload no policy selects"),
)


@dataclass
class _Model:
    """What one computation produced, drawn by the UI thread."""

    signature: tuple
    rows: list[pi.VerdictRow]
    policies: pi.PolicyView
    drift: list[pi.DriftRow]
    window: str
    reason: str  # why there is no policy data ("" when there is)
    flows_in_window: int


class PoliciesTab(CockpitTab):
    TAB_ID = "policies"
    TITLE = "Policies"

    BINDINGS = [
        Binding("v", "view('verdicts')", "Verdicts", id="policies.verdicts"),
        Binding("p", "view('policies')", "Policies", id="policies.policies"),
        Binding("d", "view('drift')", "Drift", id="policies.drift"),
        Binding("w", "what_if_fix", "What-if fix", tooltip="replay the window through the first fix of this drop (a: next fix)", id="policies.what_if"),
        Binding("o", "what_if_file", "What-if file", tooltip="replay the window through a policy manifest file or directory (never applied)", id="policies.what_if_file"),
        Binding("A", "advise", "Advise", key_display="A", tooltip="least-privilege policy for this workload from the window's flows", id="policies.advise"),
        Binding("t", "cycle_window", "Window", tooltip="window: 5 min, 15 min, 1 min, since start", id="policies.window"),
        Binding("j", "cursor('down')", "Down", show=False, id="policies.down"),
        Binding("k", "cursor('up')", "Up", show=False, id="policies.up"),
    ]

    DEFAULT_CSS = """
    PoliciesTab { height: 1fr; }
    PoliciesTab > #policies-header { height: 1; background: $panel; padding: 0 1; }
    PoliciesTab > #policies-list { height: 1fr; border: none; padding: 0; background: $surface; scrollbar-size-vertical: 1; text-wrap: nowrap; }
    PoliciesTab > #policies-list:focus { border: none; }
    PoliciesTab > #policies-info { height: 2; background: $panel; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, context: TabContext) -> None:
        super().__init__(context)
        self.view = "verdicts"
        self.window_s: int | None = 300
        self._insights = None  # pi.PolicyInsights, made by the first computation
        self.model: _Model | None = None
        self._computing: tuple | None = None
        self._drawn: tuple | None = None
        self._items: dict[str, object] = {}
        self._ids: dict[object, str] = {}
        self.header_bar = Static("", id="policies-header", markup=False)
        self.option_list = OptionList(id="policies-list")
        self.info_bar = Static("", id="policies-info", markup=False)

    def compose(self) -> ComposeResult:
        yield self.header_bar
        yield self.option_list
        yield self.info_bar

    # --- hooks -----------------------------------------------------------------------

    def tab_shown(self) -> None:
        self.screen.set_focus(self.option_list)
        self.refresh_tab()

    def legend(self) -> Legend:
        return LEGEND

    def describe_status(self, info: StatusInfo) -> StatusInfo:
        return info

    def refresh_tab(self) -> None:
        signature = self._signature()
        if signature is None:
            self._draw_empty()
            return
        if self.model is not None and self.model.signature == signature:
            if self._drawn != (signature, self.view, self.size.width):
                self._draw()
            return
        if self._computing == signature:
            return
        self._computing = signature
        self._compute(signature)

    def on_resize(self) -> None:
        if self.model is not None:
            self._draw()

    # --- computing -------------------------------------------------------------------

    def _policy_data(self):
        integrations = self.session.integrations
        return integrations.policy.data() if integrations is not None else None

    def _signature(self) -> tuple | None:
        aggregates = self.session.aggregates
        feed = self.session.feed
        if aggregates is None or feed is None:
            return None
        data = self._policy_data()
        generation = data.generation if data is not None else None
        has_cluster = data is not None and data.cluster is not None
        return (aggregates.generation, feed.now_s(), self.window_s, generation, has_cluster)

    @work(thread=True, exclusive=True, group="policies-model")
    def _compute(self, signature: tuple) -> None:
        try:
            model = self._build(signature)
        except Exception as error:  # noqa: BLE001 - never a traceback: say it in the info line
            self.app.call_from_thread(self._failed, signature, str(error))
            return
        self.app.call_from_thread(self._computed, model)

    def _build(self, signature: tuple) -> _Model:
        aggregates, feed = self.session.aggregates, self.session.feed
        assert aggregates is not None and feed is not None
        now_s = signature[1]
        window = aggregates.window(self.window_s, now_s)
        groups = aggregates.policy_groups(self.window_s, now_s)
        data = self._policy_data()
        cluster = data.cluster if data is not None else None
        reason = "" if cluster is not None else (data.reason if data is not None else "no policy data in this session")
        if self._insights is None:
            self._insights = pi.PolicyInsights()
        rows = self._insights.verdict_rows(groups, cluster, (signature[3], signature[4]), window.span_s, reason)
        label = _window_words(self.window_s)
        policies = self._insights.policy_view(rows, cluster, (signature[3], signature[4]))
        return _Model(signature, rows, policies, pi.drift_rows(rows), label, reason, window.flows)

    def _computed(self, model: _Model) -> None:
        if self._computing is not None and self._computing != model.signature:
            return  # a newer computation is under way: this answer is already old
        self.model = model
        self._computing = None
        if self.is_mounted:
            self._draw()

    def _failed(self, signature: tuple, message: str) -> None:
        self._computing = None
        self.info_bar.update(printable(f"the Policies tab could not compute: {message}"))

    # --- drawing ---------------------------------------------------------------------

    def _draw_empty(self) -> None:
        self.header_bar.update(self._header_text(None))
        if self.option_list.option_count:
            self.option_list.clear_options()
        self.info_bar.update("no flow counts in this session (no aggregate feed)")

    def _header_text(self, model: _Model | None) -> Content:
        parts: list = []
        for view, key in (("verdicts", "v"), ("policies", "p"), ("drift", "d")):
            title = view.capitalize()
            if view == "drift" and model is not None:
                title += f" {sum(len(d.rows) for d in model.drift)}"
            if view == self.view:
                parts.append((f"[{key} {title}]", "bold reverse"))
            else:
                parts.append((f" {key} {title} ", ""))
            parts.append(" ")
        if model is not None:
            data = "policy data: " + (printable(model.reason) if model.reason else "ok")
            parts.append(f"│ {model.window} (t) · counts: Hubble flows · {data}")
        return Content.assemble(*parts)

    def _draw(self) -> None:
        model = self.model
        if model is None:
            return
        width = max(self.option_list.size.width - 2, 20) if self.option_list.size.width else max(self.size.width - 2, 20)
        self._drawn = (model.signature, self.view, self.size.width)
        self.header_bar.update(self._header_text(model))
        highlighted = self.option_list.highlighted_option.id if self.option_list.highlighted_option is not None else None
        scroll_y = self.option_list.scroll_y
        self._items = {}
        options: list[Option] = []
        if self.view == "verdicts":
            options = self._verdict_options(model.rows, width)
            if not options:
                options = [Option(f"no policy verdicts in {model.window} ({model.flows_in_window:,} flows counted)", disabled=True)]
        elif self.view == "policies":
            options = self._policy_options(model.policies, width)
        else:
            options = self._drift_options(model.drift, width)
        self.option_list.clear_options()
        self.option_list.add_options(options)
        index = next((i for i, o in enumerate(options) if o.id is not None and o.id == highlighted), None)
        if index is None:
            index = next((i for i, o in enumerate(options) if not o.disabled), None)
        if index is not None:
            self.option_list.highlighted = index
        self.option_list.scroll_to(y=scroll_y, animate=False, immediate=True)
        self._show_info()

    def _option_id(self, key: object, item: object) -> str:
        option_id = self._ids.setdefault(key, f"o{len(self._ids)}")
        self._items[option_id] = item
        return option_id

    def _verdict_options(self, rows: list[pi.VerdictRow], width: int) -> list[Option]:
        return [Option(self._verdict_prompt(row, width), id=self._option_id(("row", row.key), row)) for row in rows]

    def _verdict_prompt(self, row: pi.VerdictRow, width: int) -> Content:
        g, a = row.group, row.answer
        check = pi.CHECK_MARK[a.check]
        policy = printable(row.policy) if row.policy else "—"
        if row.decided_by == "engine":
            policy += " (engine)"
        rule = a.rule or ""
        pair = printable(f"{a.source} → {a.destination} {row.port_text}")
        counts = f"{g.flows:,} flow{'' if g.flows == 1 else 's'} {_rate(row.rate)} last {_clock(g.last_ns, self.context.zone)}"
        verdict_style = _VERDICT_STYLE.get(g.verdict, "bold")
        if width >= WIDE:
            line = Content.assemble(
                (f"{check:<16}", _CHECK_STYLE[a.check]), (f"{g.verdict:<10}", verdict_style), f"{g.direction:<8}",
                _fit(policy, 46) + " ", _fit(rule, 21) + " ", _fit(pair, 40) + " ", counts,
            )
            return _crop(line, width)
        first = Content.assemble((g.verdict, verdict_style), f" {g.direction} ", policy, (f" · {rule}" if rule else "", "$text-muted"))
        second = Content.assemble("  ", (check, _CHECK_STYLE[a.check]), f" {pair}  ", (counts, "$text-muted"))
        return Content("\n").join([_crop(first, width), _crop(second, width)])

    def _policy_options(self, view: pi.PolicyView, width: int) -> list[Option]:
        options: list[Option] = []
        if not view.policies and self.model is not None and self.model.reason:
            options.append(Option(printable(self.model.reason), disabled=True))
        for policy in view.policies:
            kind = policy.ref.kind if width >= 100 else {"NetworkPolicy": "NP", "CiliumNetworkPolicy": "CNP"}.get(policy.ref.kind, "CCNP")
            lines = [Content.assemble((kind + " ", "$text-muted"), (printable(policy.name), "bold"),
                                      ("  ⚠ selects no pod" if not policy.selected else "", "bold $text-warning"))]
            counts = f"  selects {policy.selected} pod{'s' if policy.selected != 1 else ''} · allowed {policy.allowed:,} · denied {policy.denied:,}"
            if policy.audited:
                counts += f" · audit {policy.audited:,}"
            lines.append(Content(counts + " flows"))
            for rule in policy.rules:
                implicit = rule.key.index == pi.IMPLICIT
                label = f"  {rule.key.label():<22}"
                hits = f"{rule.hits:>8,} hit" + ("" if rule.hits == 1 else "s")
                unused = rule.unused and not implicit
                text_width = max(width - len(label) - len(hits) - 11, 8)
                lines.append(Content.assemble(
                    label, (_fit(printable(rule.text), text_width), "$text-muted" if implicit else ""), " ", hits,
                    ("  ⚠ unused" if unused else "", "bold $text-warning"),
                ))
            options.append(Option(Content("\n").join([_crop(line, width) for line in lines]), id=self._option_id(("policy", policy.ref), policy)))
        if view.unselected:
            options.append(Option(Content.styled(f"Not isolated: {len(view.unselected)} workloads no policy selects (A advises one)", "bold"), disabled=True))
            for item in view.unselected:
                prompt = Content.assemble(("  ⚠ ", "$text-warning"), printable(item.workload), (f"  {item.pods} pod{'s' if item.pods != 1 else ''} · not isolated", "$text-muted"))
                options.append(Option(_crop(prompt, width), id=self._option_id(("workload", item.workload), item)))
        return options

    def _drift_options(self, drift: list[pi.DriftRow], width: int) -> list[Option]:
        options: list[Option] = []
        if not drift:
            model = self.model
            return [Option(f"no drift: the engine agrees with Hubble on every group of {model.window if model else 'the window'}", disabled=True)]
        for item in drift:
            mark = "?" if item.reason.startswith("not evaluated") else "✗"
            text = f"{mark} {printable(item.reason)} ({item.flows:,} flow{'' if item.flows == 1 else 's'})"
            wrapped = textwrap.wrap(text, max(width, 20), subsequent_indent="  ") or [text]
            options.append(Option(Content.styled("\n".join(wrapped), "bold $text-error" if mark == "✗" else "bold $text-warning"), disabled=True))
            options += [Option(self._verdict_prompt(row, width), id=self._option_id(("row", row.key), row)) for row in item.rows]
        return options

    def _selected(self) -> object | None:
        option = self.option_list.highlighted_option
        return self._items.get(option.id) if option is not None and option.id is not None else None

    def _show_info(self) -> None:
        item = self._selected()
        if isinstance(item, pi.VerdictRow):
            a, g = item.answer, item.group
            engine = f"engine: {a.engine_verdict}" if a.engine_verdict else "engine: —"
            seen = f"first {_clock(g.first_ns, self.context.zone)} last {_clock(g.last_ns, self.context.zone)}"
            tail = a.reason if a.reason else f"{pi.CHECK_MARK[a.check]} agrees with Hubble ({a.rule or 'no rule'})"
            keys = " · enter explain" + (" · w what-if fix" if a.engine_verdict == "denied" else "") + " · A advise"
            text = f"{engine} · {seen}{keys}\n{tail}"
        elif isinstance(item, pi.PolicyRow):
            unused = len(item.unused_rules)
            text = f"enter: YAML with hits · {unused} unused rule{'s' if unused != 1 else ''} in the window · A advise a selected workload"
        elif isinstance(item, pi.Unselected):
            text = f"{item.workload} is selected by no policy: every peer may reach it, it may reach every peer · A advises one"
        else:
            text = ""
        self.info_bar.update(printable(text, keep_newlines=True))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._show_info()

    # --- actions ---------------------------------------------------------------------

    def action_view(self, view: str) -> None:
        if view != self.view:
            self.view = view
            self.option_list.highlighted = None
            self.option_list.scroll_to(y=0, animate=False, immediate=True)
            self._draw()

    def action_cycle_window(self) -> None:
        self.window_s = WINDOWS[(WINDOWS.index(self.window_s) + 1) % len(WINDOWS)]
        self.notify(f"window: {_window_words(self.window_s)}", timeout=1.5)
        self.refresh_tab()

    def action_cursor(self, where: str) -> None:
        (self.option_list.action_cursor_down if where == "down" else self.option_list.action_cursor_up)()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        item = self._items.get(event.option.id or "")
        if isinstance(item, pi.VerdictRow):
            self._open_row(item)
        elif isinstance(item, pi.PolicyRow):
            self._open_policy(item)
        elif isinstance(item, pi.Unselected):
            self._advise(item.workload)

    def _open_row(self, row: pi.VerdictRow) -> None:
        from kcockpit.ui.screens.detail import FlowDetailScreen

        if row.group.sample is None:
            self.notify("this group has no sample flow to explain", severity="warning")
            return
        try:
            record = FlowRecord.from_bytes(row.group.sample)
        except Exception as error:  # noqa: BLE001
            self.notify(f"the sample flow cannot be read: {error}", severity="error", markup=False)
            return
        self.app.push_screen(FlowDetailScreen(record, self.context.zone), self._after_detail)

    def _after_detail(self, jump: str | None) -> None:
        if jump:
            self.open_flows(jump)

    def _open_policy(self, policy: pi.PolicyRow) -> None:
        from kcockpit.policy import builders
        from kcockpit.ui.screens.policy_text import PolicyTextScreen, TextPage

        model = self.model
        body = pi.annotated_yaml(policy, model.window if model else "")
        page = TextPage(f"{policy.ref.kind} {policy.name} · hits in {model.window if model else ''}", "",
                        builders.to_yaml(builders.object_for_apply(policy.obj)), f"kcockpit-{policy.ref.namespace or 'cluster'}-{policy.ref.name}",
                        yaml=body)
        self.app.push_screen(PolicyTextScreen(page, self.context.export_dir))

    def _cluster(self):
        data = self._policy_data()
        if data is None or data.cluster is None:
            self.notify(data.reason if data is not None else "no policy data in this session", severity="warning", markup=False)
            return None
        return data.cluster

    def action_what_if_fix(self) -> None:
        item = self._selected()
        if not isinstance(item, pi.VerdictRow) or item.group.sample is None:
            self.notify("select a dropped verdict group for a what-if of its fix (o: a policy file)", severity="warning")
            return
        cluster = self._cluster()
        if cluster is not None and self.model is not None:
            self.notify("replaying the window through the fix…", timeout=1)
            self._what_if_fix(item, cluster, self.model)

    @work(thread=True, exclusive=True, group="policies-whatif")
    def _what_if_fix(self, row: pi.VerdictRow, cluster, model: _Model) -> None:
        from kcockpit.policy.flows import explain_flow
        from kcockpit.ui.policy_view import fix_document, opens_text

        try:
            verdict = explain_flow(FlowRecord.from_bytes(row.group.sample), cluster)
        except Exception as error:  # noqa: BLE001
            self.app.call_from_thread(self.notify, f"the policy engine failed: {error}", severity="error", markup=False)
            return
        fixes = [p for p in verdict.fixes if p.policy is not None]
        if not fixes:
            self.app.call_from_thread(self.notify, f"no fix to replay: {verdict.sentence}", severity="warning", markup=False)
            return

        def page(index: int):
            from kcockpit.ui.screens.policy_text import TextPage

            proposal = fixes[index % len(fixes)]
            result = pi.what_if(model.rows, cluster, pi.with_objects(cluster, [proposal.policy]), proposal.title)
            body = "\n".join([
                f"fix: {proposal.title}",
                f"pod pairs: {opens_text(proposal)}",
                "",
                "Replayed against the traffic observed (Hubble flows, " + model.window + "):",
                pi.what_if_text(result, _the(model.window)),
            ])
            meta = (proposal.policy or {}).get("metadata") or {}
            return TextPage(f"What-if: fix {index % len(fixes) + 1}/{len(fixes)} for {row.answer.source} → {row.answer.destination} {row.port_text}",
                            body, fix_document(proposal), f"kcockpit-fix-{proposal.kind}-{meta.get('namespace', 'default')}-{meta.get('name', 'policy')}",
                            f"fix {index % len(fixes) + 1}/{len(fixes)}" if len(fixes) > 1 else "", proposal.yaml())

        first = page(0)
        self.app.call_from_thread(self._push_page, first, page)

    def _push_page(self, page, next_page=None) -> None:
        from kcockpit.ui.screens.policy_text import PolicyTextScreen

        self.app.push_screen(PolicyTextScreen(page, self.context.export_dir, next_page))

    def action_what_if_file(self) -> None:
        from kcockpit.ui.screens.policy_text import PathPrompt

        if self._cluster() is None or self.model is None:
            return
        self.app.push_screen(PathPrompt(), self._what_if_path)

    def _what_if_path(self, path: str | None) -> None:
        if path and self.model is not None:
            cluster = self._cluster()
            if cluster is not None:
                self._what_if_file(path, cluster, self.model)

    @work(thread=True, exclusive=True, group="policies-whatif")
    def _what_if_file(self, path: str, cluster, model: _Model) -> None:
        from kcockpit.policy import builders
        from kcockpit.sources import manifests
        from kcockpit.ui.screens.policy_text import TextPage

        try:
            loaded = manifests.load(Path(path).expanduser())
        except manifests.ManifestError as error:
            self.app.call_from_thread(self.notify, str(error), severity="error", markup=False)
            return
        policies = [o for o in loaded.objects if o.get("kind") in ("NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")]
        problems = [str(p) for p in loaded.problems]
        if not policies:
            detail = ("; ".join(problems[:2])) if problems else "no NetworkPolicy or Cilium policy in it"
            self.app.call_from_thread(self.notify, f"{path}: {detail}", severity="warning", markup=False)
            return
        result = pi.what_if(model.rows, cluster, pi.with_objects(cluster, policies), path)
        names = ", ".join(f"{p.get('kind')} {(p.get('metadata') or {}).get('namespace', '')}/{(p.get('metadata') or {}).get('name', '')}" for p in policies)
        body = "\n".join([
            f"{len(policies)} polic{'y' if len(policies) == 1 else 'ies'} from {path} (read, never applied): {names}",
            *(f"skipped: {p}" for p in problems[:5]),
            "",
            "Replayed against the traffic observed (Hubble flows, " + model.window + "):",
            pi.what_if_text(result, _the(model.window)),
        ])
        document = "---\n".join(builders.to_yaml(builders.object_for_apply(p)) for p in policies)
        self.app.call_from_thread(self._push_page, TextPage(f"What-if: {path}", body, document, "kcockpit-what-if", yaml=document))

    def action_advise(self) -> None:
        item = self._selected()
        workload = None
        if isinstance(item, pi.VerdictRow):
            endpoint = item.group.source if item.group.direction == "egress" else item.group.destination
            workload = endpoint.name if "/" in endpoint.name else None
        elif isinstance(item, pi.Unselected):
            workload = item.workload
        elif isinstance(item, pi.PolicyRow) and self.model is not None:
            workload = _selected_workload(item, self._cluster())
        if not workload:
            self.notify("select a group or a workload of the cluster to advise a policy for", severity="warning")
            return
        self._advise(workload)

    def _advise(self, workload: str) -> None:
        cluster = self._cluster()
        if cluster is not None and self.model is not None:
            self.notify(f"advising a least-privilege policy for {workload}…", timeout=1, markup=False)
            self._advise_on_thread(workload, cluster, self.model)

    @work(thread=True, exclusive=True, group="policies-advise")
    def _advise_on_thread(self, workload: str, cluster, model: _Model) -> None:
        from kcockpit.policy.advise import AdviceError
        from kcockpit.ui.screens.policy_text import TextPage

        try:
            advice = pi.advise_workload(model.rows, cluster, workload)
        except AdviceError as error:
            self.app.call_from_thread(self.notify, str(error), severity="warning", markup=False)
            return
        except Exception as error:  # noqa: BLE001
            self.app.call_from_thread(self.notify, f"advice failed: {error}", severity="error", markup=False)
            return
        result = pi.what_if(model.rows, cluster, pi.with_objects(cluster, [advice.networkpolicy]), f"advice for {workload}")
        verified = "verified: the engine allows every observed connection with it alone" if advice.verified else "NOT verified: " + "; ".join(advice.failures[:3])
        body = "\n".join([
            f"From {pi.ADVICE_SOURCE} ({model.window}): {advice.connections} connections; {verified}.",
            "",
            "What-if of applying the NetworkPolicy, replayed against the same window:",
            pi.what_if_text(result, _the(model.window)),
        ])
        page = TextPage(f"Advise: least-privilege policy for {workload}", body, advice.yaml(), f"kcockpit-advice-{workload.replace('/', '-')}",
                        yaml=advice.yaml())
        self.app.call_from_thread(self._push_page, page)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return True


def _selected_workload(policy: pi.PolicyRow, cluster) -> str | None:
    if cluster is None:
        return None
    for pod in cluster.pods:
        if not pod.host_network and pi._selects(policy.ref, policy.obj, pod, cluster):
            return f"{pod.namespace}/{pod.workload or pod.name}"
    return None


def _window_words(window_s: int | None) -> str:
    if window_s is None:
        return "since start"
    return f"last {window_s // 60} min" if window_s % 60 == 0 else f"last {window_label(window_s)}"


def _rate(per_s: float) -> str:
    if per_s >= 10:
        return f"{per_s:,.0f}/s"
    if per_s >= 0.1:
        return f"{per_s:.1f}/s"
    return f"{per_s * 60:.1f}/min"


def _clock(time_ns: int, zone) -> str:
    if not time_ns:
        return "—"
    return datetime.fromtimestamp(time_ns / 1e9, zone).strftime("%H:%M:%S")


def _fit(text: str, width: int) -> str:
    if len(text) <= width:
        return text.ljust(width)
    return text[: max(width - 1, 0)] + "…"


def _crop(content: Content, width: int) -> Content:
    if content.cell_length <= width:
        return content
    return content.truncate(max(width - 1, 1)) + "…"




def _the(window: str) -> str:
    """"the last 5 min" in a sentence; "since start" as it is."""
    return f"the {window}" if window.startswith("last") else window
