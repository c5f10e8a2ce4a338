"""The filter bar language, parsed into the FlowFilters `hubble observe` would send.

Three spellings mix freely in one bar, entries separated by commas and/or spaces:

- Hubble UI entries: `[!][from:|to:|either:]kind=value`, e.g. `from:label=app=frontend`,
  `to:dns=*.googleapis.com`, `!workload=Deployment:loadgenerator`; a bare `key=value`
  (or `k8s:key=value`) is a label.
- Words for the common `hubble observe` filters: `ns=otel-demo`, `verdict=dropped`,
  `drop-reason=policy-denied`, `protocol=udp`, `to:port=53`, `http-status=5+`,
  `type=trace:to-endpoint`, `direction=egress`, `rcode=nxdomain`, ...; the bare words
  `dropped`, `egress`, `udp`, `l7`, ... ; `!` or `not` before an entry negates it.
- Pasted flags: `--namespace otel-demo --not --verdict FORWARDED --to-port 53`.
- `or` (or `|`) between groups of entries: each group builds its own whitelist
  filters, so `from:pod=a/x to:pod=b/y or from:pod=b/y to:pod=a/x` is "between x and y"
  (negated entries always go to the one shared blacklist).

Every entry becomes the `hubble observe` flag it stands for, and the flags are combined
exactly as the CLI combines them: a flag without direction (`--pod`, `--label`, ...)
adds the source-side field to one FlowFilter and the destination-side field to another
(the two are OR'ed), directional and sideless flags go into both, namespaces are folded
into the pod/service fields at the end, and negated entries build the blacklist the same
way. DNS rcodes have no server-side field, so `rcode=` is a client-side predicate.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from kcockpit.model.hubble_cli import (
    DROP_REASONS,
    EVENT_TYPES,
    FILTER_FLAGS,
    OTHER_FLAGS,
    PROTOCOLS,
    RCODES,
    SHORT_FLAGS,
    SHORT_OTHER_FLAGS,
    SIDED_FLAGS,
    SIDELESS_FLAGS,
    TCP_FLAGS,
    TRACE_POINTS,
    VERDICTS,
    FilterEntry,
    FlagConflictError,
    FlagTracker,
    IDENTITY_NAMES,
)
from kcockpit.model.matcher import FilterError, FlowMatcher
from kcockpit.model.record import DNS_RCODE_NAMES, FlowRecord
from kcockpit.wire.hubble_pb import flow_pb


class FilterSyntaxError(ValueError):
    """Bad filter text: `message` says what was expected, `token` and `position` (0-based) where."""

    def __init__(self, message: str, token: str, position: int) -> None:
        self.message = message
        self.token = token
        self.position = position
        super().__init__(f"column {position + 1}: {message}")


# --------------------------------------------------------------------------- vocabulary

# Bar kind -> (CLI flag stem, whether from:/to: apply). Sided stems get from-/to- prefixes.
_KINDS: dict[str, tuple[str, bool]] = {
    "label": ("label", True),
    "ip": ("ip", True),
    "dns": ("fqdn", True),
    "fqdn": ("fqdn", True),
    "identity": ("identity", True),
    "workload": ("workload", True),
    "pod": ("pod", True),
    "namespace": ("namespace", True),
    "service": ("service", True),
    "port": ("port", True),
    "tcp-flag": ("tcp-flags", False),
    "verdict": ("verdict", False),
    "drop-reason": ("drop-reason-desc", False),
    "protocol": ("protocol", False),
    "http-status": ("http-status", False),
    "http-method": ("http-method", False),
    "http-path": ("http-path", False),
    "http-url": ("http-url", False),
    "http-header": ("http-header", False),
    "type": ("type", False),
    "direction": ("traffic-direction", False),
    "node": ("node-name", False),
    "node-label": ("node-label", False),
    "cluster": ("cluster", False),
    "uuid": ("uuid", False),
    "ip-version": ("ip-version", False),
    "snat-ip": ("snat-ip", False),
    "interface": ("interface", False),
    "rcode": ("rcode", False),  # client-side only
    "dns-query": ("dns-query", False),  # FlowFilter.dns_query (RE2); no hubble observe flag
}
_KIND_ALIASES = {
    "l": "label", "labels": "label", "id": "identity", "ns": "namespace", "n": "namespace",
    "svc": "service", "tcp-flags": "tcp-flag", "flags": "tcp-flag", "drop-reason-desc": "drop-reason",
    "reason": "drop-reason", "proto": "protocol", "status": "http-status", "method": "http-method",
    "path": "http-path", "url": "http-url", "header": "http-header", "t": "type",
    "traffic-direction": "direction", "dir": "direction", "node-name": "node", "iface": "interface",
    "dns-rcode": "rcode", "query": "dns-query",
}  # fmt: skip
_SIDE_PREFIXES = {"from": "from-", "to": "to-", "either": ""}

# Bare words: what each means as an entry.
_WORDS: dict[str, tuple[str, str | None]] = (
    {name: ("verdict", upper) for name, upper in VERDICTS.items()}
    | {"ingress": ("traffic-direction", "ingress"), "egress": ("traffic-direction", "egress")}
    | {name: ("protocol", name) for name in PROTOCOLS}
    | {name: ("type", name) for name in ("drop", "trace", "l7", "policy-verdict", "trace-sock", "capture")}
    | {"ipv4": ("ipv4", None), "ipv6": ("ipv6", None)}
)

# --------------------------------------------------------------------------- client-side filters


@dataclass(frozen=True)
class RcodeFilter:
    """DNS responses whose rcode is one of `codes` (no FlowFilter field exists for this)."""

    codes: frozenset[int]
    negated: bool = False

    def matches_record(self, record: FlowRecord) -> bool:
        hit = record.l7_kind == "dns" and record.l7_type == flow_pb.RESPONSE and record.dns_rcode in self.codes
        return hit != self.negated

    def matches(self, flow: Any) -> bool:
        l7 = flow.l7
        hit = l7.WhichOneof("record") == "dns" and l7.type == flow_pb.RESPONSE and l7.dns.rcode in self.codes
        return hit != self.negated


class ParsedMatcher:
    """The server-side FlowMatcher plus the client-only predicates, all of which must pass."""

    __slots__ = ("flow_matcher", "client_only")

    def __init__(self, flow_matcher: FlowMatcher, client_only: tuple[RcodeFilter, ...]) -> None:
        self.flow_matcher = flow_matcher
        self.client_only = client_only

    @property
    def matches_everything(self) -> bool:
        return self.flow_matcher.matches_everything and not self.client_only

    def matches(self, flow: Any) -> bool:
        return self.flow_matcher.matches(flow) and all(c.matches(flow) for c in self.client_only)

    def matches_record(self, record: FlowRecord) -> bool:
        return self.flow_matcher.matches_record(record) and all(c.matches_record(record) for c in self.client_only)


@dataclass(frozen=True)
class ParsedFilter:
    text: str
    whitelist: tuple[Any, ...] = ()
    blacklist: tuple[Any, ...] = ()
    client_only: tuple[RcodeFilter, ...] = ()
    entries: tuple[FilterEntry, ...] = ()
    ignored: tuple[str, ...] = field(default=())  # pasted non-filter flags, e.g. "--last 100"

    @property
    def is_empty(self) -> bool:
        return not self.entries

    @cached_property
    def _matcher(self) -> ParsedMatcher:
        return ParsedMatcher(FlowMatcher(self.whitelist, self.blacklist), self.client_only)

    def matcher(self) -> ParsedMatcher:
        """A matcher with matches(flow) / matches_record(record), compiled once per filter."""
        return self._matcher

    def describe(self) -> str:
        """Short summary for the status bar, e.g. `namespace otel-demo · verdict DROPPED · not to-port 53`."""
        if not self.entries:
            return "all flows"
        # Alternatives read "a · b or c · d". Negations share one blacklist, as `hubble
        # observe --not` builds it: a flow is hidden when it matches all of them at once.
        groups: dict[int, list[str]] = {}
        for entry in self.entries:
            if not entry.negated:
                groups.setdefault(entry.group, []).append(entry.describe())
        kept = " or ".join(" · ".join(parts) for parts in groups.values())
        negated = [e.describe().removeprefix("not ") for e in self.entries if e.negated]
        hidden = ""
        if len(negated) == 1:
            hidden = f"not {negated[0]}"
        elif negated:
            hidden = f"not ({' · '.join(negated)})"
        return " · ".join(part for part in (kept, hidden) if part)


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class _Token:
    text: str  # with quotes removed
    raw: str
    position: int


def _chunks(text: str) -> Iterator[_Token]:
    """Whitespace-separated chunks; quotes and parentheses keep their content together."""
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start, depth, quote, out = i, 0, "", []
        while i < n:
            ch = text[i]
            if quote:
                if ch == quote:
                    quote = ""
                else:
                    out.append(ch)
            elif ch in "\"'":
                quote = ch
            elif ch.isspace() and depth == 0:
                break
            else:
                depth += (ch == "(") - (ch == ")")
                out.append(ch)
            i += 1
        if quote:
            raise FilterSyntaxError(f"unclosed {quote} quote", text[start:i], start)
        yield _Token("".join(out), text[start:i], start)


def _split_commas(chunk: _Token) -> Iterator[_Token]:
    """Split an entry chunk at commas outside parentheses and quotes."""
    raw, depth, quote, start = chunk.raw, 0, "", 0
    pieces: list[tuple[int, int]] = []
    for i, ch in enumerate(raw):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "()":
            depth += 1 if ch == "(" else -1
        elif ch == "," and depth == 0:
            pieces.append((start, i))
            start = i + 1
    pieces.append((start, len(raw)))
    for a, b in pieces:
        piece = raw[a:b]
        if piece.strip():
            yield _Token(re.sub(r"[\"']", "", piece), piece, chunk.position + a)


def _merge_set_operators(chunks: list[_Token]) -> list[_Token]:
    """Rejoin `key in (a, b)` / `key notin (...)` label requirements split at spaces."""
    out: list[_Token] = []
    i = 0
    while i < len(chunks):
        c = chunks[i]
        if out and c.text in ("in", "notin") and i + 1 < len(chunks) and chunks[i + 1].text.startswith("("):
            prev, nxt = out.pop(), chunks[i + 1]
            out.append(_Token(f"{prev.text} {c.text} {nxt.text}", f"{prev.raw} {c.raw} {nxt.raw}", prev.position))
            i += 2
            continue
        out.append(c)
        i += 1
    return out


# --------------------------------------------------------------------------- values


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word.lower(), choices, n=2, cutoff=0.7)
    return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?" if close else ""


def _listing(choices: list[str], limit: int = 12) -> str:
    shown = ", ".join(choices[:limit])
    return shown + (f", ... ({len(choices) - limit} more)" if len(choices) > limit else "")


def _one_of(word: str, choices: list[str], what: str, token: _Token) -> FilterSyntaxError:
    # The suggestion first: at 80 columns it is what must not be cut.
    suggestion = _suggest(word, choices).removeprefix("; ")
    return FilterSyntaxError(
        f"unknown {what} '{word}'{': ' + suggestion if suggestion else ''} (expected one of: {_listing(choices)})",
        token.raw,
        token.position,
    )


def _normalize_value(flag: str, value: str, token: _Token) -> str:
    """Check a value as the CLI would and return it in the form the CLI flag takes."""
    stem = flag.removeprefix("from-").removeprefix("to-")
    if stem == "verdict":
        if value.lower() not in VERDICTS:
            raise _one_of(value, list(VERDICTS), "verdict", token)
        return VERDICTS[value.lower()]
    if stem == "drop-reason-desc":
        name = value.upper().replace("-", "_").replace(" ", "_")
        if name not in DROP_REASONS:
            raise _one_of(value, [n.lower().replace("_", "-") for n in DROP_REASONS], "drop reason", token)
        return name
    if stem == "traffic-direction":
        if value.lower() not in ("ingress", "egress"):
            raise _one_of(value, ["ingress", "egress"], "traffic direction", token)
        return value.lower()
    if stem == "identity":
        if value.lower() in IDENTITY_NAMES or re.fullmatch(r"[0-9]+", value) and int(value) < 2**32:
            return value.lower()
        raise _one_of(value, [*IDENTITY_NAMES, "<number>"], "identity", token)
    if stem == "workload":
        kind, sep, name = value.replace(":", "/", 1).partition("/")
        return f"{kind}/{name}" if sep else value
    if stem == "tcp-flags":
        flags = [f.upper() for f in re.split(r"[+,|]", value)]
        for f in flags:
            if f not in TCP_FLAGS:
                raise _one_of(f, list(TCP_FLAGS), "TCP flag", token)
        return ",".join(flags)
    if stem == "type":
        return _normalize_event_type(value, token)
    if stem == "protocol":
        if value.lower() not in PROTOCOLS:
            raise _one_of(value, list(PROTOCOLS), "protocol", token)
        return value.lower()
    if stem == "ip-version":
        if value.lower() in ("4", "v4", "ipv4", "ip4"):
            return "4"
        if value.lower() in ("6", "v6", "ipv6", "ip6"):
            return "6"
        raise _one_of(value, ["4", "6"], "IP version", token)
    if stem == "http-header" and ":" not in value:
        raise FilterSyntaxError(f"http-header '{value}' needs the form name:value", token.raw, token.position)
    if stem == "rcode":
        codes = [_rcode_number(v, token) for v in value.split("|")]
        return "|".join(DNS_RCODE_NAMES.get(c, str(c)) for c in codes)
    if stem == "port" and not (re.fullmatch(r"[0-9]{1,5}", value) and int(value) <= 65535):
        raise FilterSyntaxError(f"port '{value}' is not a port number (expected 0-65535)", token.raw, token.position)
    return value


def _rcode_number(value: str, token: _Token) -> int:
    if re.fullmatch(r"[0-9]{1,5}", value):
        return int(value)
    if value.upper() not in RCODES:
        raise _one_of(value, [n.lower() for n in RCODES], "DNS rcode", token)
    return RCODES[value.upper()]


def _normalize_event_type(value: str, token: _Token) -> str:
    name, sep, sub = value.lower().partition(":")
    if name not in EVENT_TYPES and not name.isdigit():
        raise _one_of(name, list(EVENT_TYPES), "event type", token)
    if not sep:
        return name
    if name == "drop" and sub.upper().replace("-", "_") in DROP_REASONS:
        return f"{name}:{DROP_REASONS[sub.upper().replace('-', '_')]}"  # the CLI takes drop sub-types as numbers
    if name == "trace" and sub in TRACE_POINTS or sub.isdigit():
        return f"{name}:{sub}"
    choices = list(TRACE_POINTS) if name == "trace" else ["<number>"]
    raise _one_of(sub, choices, f"{name} sub-type", token)


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.entries: list[FilterEntry] = []
        self.ignored: list[str] = []
        self.group = 0
        self.last_or: _Token | None = None

    def parse(self) -> None:
        chunks = _merge_set_operators(list(_chunks(self.text)))
        negate: _Token | None = None
        i = 0
        words = [c.text.lower() for c in chunks[:2]]
        if words[:2] == ["hubble", "observe"]:
            i = 2
        elif words[:1] == ["observe"]:
            i = 1
        while i < len(chunks):
            chunk = chunks[i]
            i += 1
            if chunk.text.startswith("-") and len(chunk.text) > 1 and not chunk.text[1:2].isdigit():
                i, negate = self._flag(chunks, i, chunk, negate)
                continue
            for token in _split_commas(chunk):
                if token.text.lower() in ("or", "|"):
                    self._next_group(token, negate)
                    continue
                if token.text.lower() == "not":
                    if negate is not None:
                        raise FilterSyntaxError("'not' twice in a row", token.raw, token.position)
                    negate = token
                    continue
                self._entry(token, negate is not None)
                negate = None
        if negate is not None:
            raise FilterSyntaxError(f"'{negate.raw}' must be followed by a filter", negate.raw, negate.position)
        if self.last_or is not None and not any(e.group == self.group and not e.negated for e in self.entries):
            raise FilterSyntaxError(
                f"'{self.last_or.raw}' must be followed by a filter that is not negated",
                self.last_or.raw,
                self.last_or.position,
            )

    def _next_group(self, token: _Token, negate: _Token | None) -> None:
        if negate is not None:
            message = f"'{negate.raw}' must be followed by a filter, not '{token.raw}'"
            raise FilterSyntaxError(message, token.raw, token.position)
        if not any(e.group == self.group and not e.negated for e in self.entries):
            raise FilterSyntaxError(
                f"'{token.raw}' needs a (non-negated) filter on its left", token.raw, token.position
            )
        self.group += 1
        self.last_or = token

    def _flag(self, chunks: list[_Token], i: int, chunk: _Token, negate: _Token | None) -> tuple[int, _Token | None]:
        name, eq, inline = chunk.text.lstrip("-").partition("=")
        long = chunk.text.startswith("--")
        if not long:
            name = SHORT_FLAGS.get(name) or SHORT_OTHER_FLAGS.get(name) or f"-{name}"
        takes_value = FILTER_FLAGS.get(name, OTHER_FLAGS.get(name))
        if takes_value is None:
            choices = sorted(FILTER_FLAGS)
            raise FilterSyntaxError(
                f"unknown hubble observe flag '{chunk.text}'{_suggest(name, choices)}", chunk.raw, chunk.position
            )
        value: str | None = None
        if takes_value:
            if eq:
                value = inline
            elif i < len(chunks):
                value, i = chunks[i].text, i + 1
            else:
                raise FilterSyntaxError(f"flag '{chunk.text}' needs a value", chunk.raw, chunk.position)
        if name not in FILTER_FLAGS:
            self.ignored.append(chunk.text if value is None or eq else f"{chunk.text} {value}")
            return i, negate
        if name == "not":
            if negate is not None:
                raise FilterSyntaxError("consecutive --not", chunk.raw, chunk.position)
            return i, chunk
        shown = chunk.raw if value is None or eq else f"{chunk.raw} {value}"
        token = _Token(value or "", shown, chunk.position)
        normalized = None if value is None else _normalize_value(name, value, token)
        self._add(FilterEntry(name, normalized, negate is not None, shown, chunk.position))
        return i, None

    def _entry(self, token: _Token, negated: bool) -> None:
        text = token.text.strip()
        if text.startswith("!") and not text.startswith("!="):
            negated, text = not negated, text[1:]
        side_prefix = None
        head, colon, rest = text.partition(":")
        if colon and head.lower() in _SIDE_PREFIXES:
            side_prefix, text = head.lower(), rest
        key, eq, value = text.partition("=")
        kind_word = key.strip().lower()
        if not eq and re.search(r"\s(not)?in\s*\(", text):
            key, eq, value = "label", "=", text  # a bare `key in (a, b)` selector
            kind_word = "label"
        if not eq:
            self._word(token, kind_word, negated, side_prefix)
            return
        kind = _KIND_ALIASES.get(kind_word, kind_word)
        if kind not in _KINDS:
            if side_prefix is None and _looks_like_typo(kind_word):
                raise FilterSyntaxError(
                    f"unknown filter kind '{key}' (expected one of: {', '.join(_KINDS)})"
                    f"{_suggest(kind_word, list(_KINDS) + list(_KIND_ALIASES))}; "
                    f"to filter on a label named '{key}', write label={text}",
                    token.raw,
                    token.position,
                )
            kind, value = "label", text  # a bare key=value is a label selector
        stem, sided = _KINDS[kind]
        if not value:
            raise FilterSyntaxError(f"'{kind}=' needs a value", token.raw, token.position)
        flag = stem
        if side_prefix and side_prefix != "either":
            if not sided:
                raise FilterSyntaxError(
                    f"'{kind}' has no direction: drop the '{side_prefix}:' prefix", token.raw, token.position
                )
            flag = _SIDE_PREFIXES[side_prefix] + stem
        self._add(FilterEntry(flag, _normalize_value(flag, value, token), negated, token.raw, token.position))

    def _word(self, token: _Token, word: str, negated: bool, side_prefix: str | None) -> None:
        if word in _WORDS and side_prefix is None:
            flag, value = _WORDS[word]
            self._add(FilterEntry(flag, value, negated, token.raw, token.position))
            return
        hint = _suggest(word, list(_WORDS))
        if not hint and re.fullmatch(r"[a-z0-9][-a-z0-9.]*", word):
            hint = f"; for a pod or workload write pod={word} or workload={word}"
        raise FilterSyntaxError(
            f"'{token.text}' is not a filter (expected kind=value, e.g. verdict=dropped, or a word such as "
            f"dropped, egress, udp, l7){hint}",
            token.raw,
            token.position,
        )

    def _add(self, entry: FilterEntry) -> None:
        if entry.flag != "rcode":
            _check_values(entry)
        self.entries.append(dataclasses.replace(entry, group=self.group))


def _looks_like_typo(word: str) -> bool:
    """A key one edit away from a kind name is a typo, not a label key (labels have prefixes or dots)."""
    if not re.fullmatch(r"[a-z-]{3,}", word):
        return False
    names = list(_KINDS) + list(_KIND_ALIASES)
    return any(_edit_distance_at_most_one(word, name) and word[0] == name[0] for name in names if len(name) >= 3)


def _edit_distance_at_most_one(a: str, b: str) -> bool:
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        # one transposition of neighbours
        i, j = diffs[0], diffs[-1]
        return len(diffs) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _check_values(entry: FilterEntry) -> None:
    """Compile the entry alone so a bad regex, CIDR or selector points at its own token."""
    tracker = FlagTracker()
    tracker.add(FilterEntry(entry.flag, entry.value, False, entry.token, entry.position))
    try:
        FlowMatcher(tracker.flow_filters())
    except FilterError as err:
        raise FilterSyntaxError(f"{entry.token}: {err.expected}", entry.token, entry.position) from None


def parse_filter(text: str) -> ParsedFilter:
    """Parse filter-bar text; "" gives the empty filter, which matches every flow."""
    parser = _Parser(text)
    parser.parse()
    whitelist, blacklist, client_only = _build(parser)
    parsed = ParsedFilter(text, whitelist, blacklist, client_only, tuple(parser.entries), tuple(parser.ignored))
    try:
        parsed.matcher()  # compiled now, so combinations the server would refuse are reported here
    except FilterError as err:
        culprit = _entry_for_field(parser.entries, err.field)
        raise FilterSyntaxError(f"{culprit.token}: {err.expected}", culprit.token, culprit.position) from None
    return parsed


def _build(parser: _Parser) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[RcodeFilter, ...]]:
    """Feed the entries to one tracker per `or` group (whitelist) and one for negations."""
    groups = [FlagTracker() for _ in range(parser.group + 1)]
    black = FlagTracker()
    client: list[RcodeFilter] = []
    for entry in parser.entries:
        if entry.flag == "rcode":
            if parser.group:
                raise FilterSyntaxError("rcode filters cannot be combined with 'or'", entry.token, entry.position)
            assert entry.value is not None
            codes = frozenset(int(v) if v.isdigit() else RCODES[v] for v in entry.value.split("|"))
            client.append(RcodeFilter(codes, entry.negated))
            continue
        try:
            (black if entry.negated else groups[entry.group]).add(entry)
        except FlagConflictError as err:
            raise FilterSyntaxError(str(err), entry.token, entry.position) from None
    whitelist = tuple(ff for tracker in groups for ff in tracker.flow_filters())
    return whitelist, black.flow_filters(), tuple(client)


def _entry_for_field(entries: list[FilterEntry], field_name: str) -> FilterEntry:
    """The last entry that sets FlowFilter field `field_name` (for pointing at an error)."""
    for entry in reversed(entries):
        stem = entry.flag.removeprefix("from-").removeprefix("to-")
        suffix = SIDED_FLAGS[stem][0] if stem in SIDED_FLAGS else None
        if SIDELESS_FLAGS.get(entry.flag, ("",))[0] == field_name or suffix and field_name.endswith(suffix):
            return entry
    return entries[-1]
