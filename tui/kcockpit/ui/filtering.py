"""The filter bar's text, compiled once with the shared filter language.

Also the small text edits the `v` (verdict) and `n` (namespace) keys make: they rewrite
one term of the filter text, so what the user sees in the bar is always the whole filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kcockpit.model.filterlang import FilterSyntaxError, parse_filter


VERDICT_KEYS = ("verdict",)
NAMESPACE_KEYS = ("namespace", "ns")


@dataclass(frozen=True, eq=False)
class FilterState:
    text: str = ""
    matcher: object | None = None  # has matches_record(record) -> bool; None = everything
    whitelist: tuple = ()
    blacklist: tuple = ()
    description: str = ""
    error: str = ""
    parsed: object | None = field(default=None, repr=False)
    client_only: bool = False  # has predicates no server can apply (DNS rcode)

    @property
    def verdict(self) -> str:
        return term_value(self.text, VERDICT_KEYS).upper()

    @property
    def namespace(self) -> str:
        return term_value(self.text, NAMESPACE_KEYS)


def compile_filter(text: str) -> FilterState:
    """A FilterState for `text`; `error` is set (and nothing else) when it does not parse."""
    text = text.strip()
    if not text:
        return FilterState()
    try:
        parsed = parse_filter(text)
    except FilterSyntaxError as error:
        return FilterState(text=text, error=describe_error(error, text))
    matcher = parsed.matcher()
    return FilterState(
        text=text,
        matcher=None if matcher.matches_everything else matcher,
        whitelist=tuple(parsed.whitelist),
        blacklist=tuple(parsed.blacklist),
        description=parsed.describe(),
        parsed=parsed,
        client_only=bool(parsed.client_only),
    )


def describe_error(error: FilterSyntaxError, text: str) -> str:
    position = getattr(error, "position", None)
    message = getattr(error, "message", str(error))
    if isinstance(position, int) and 0 <= position <= len(text):
        return f"✗ column {position + 1}: {message}"  # where and what first: the rest may wrap
    return f"✗ {message}"


def _term_pattern(keys: tuple[str, ...]) -> re.Pattern[str]:
    # A whole, positive `key=value` term: not part of from:/to:/either: or a negation.
    names = "|".join(re.escape(key) for key in keys)
    return re.compile(rf"(?:^|(?<=[\s,]))(?:{names})=([^\s,]+)")


def _parsed(text: str):
    try:
        return parse_filter(text) if text.strip() else None
    except FilterSyntaxError:
        return None


def _entries(parsed, keys: tuple[str, ...]) -> list:
    """The positive entries for `keys` (the `verdict` or `namespace` flag, whatever the
    spelling: `dropped`, `ns=x`, `--verdict DROPPED`, `-n x`)."""
    return [e for e in parsed.entries if e.flag == keys[0] and not e.negated]


def term_value(text: str, keys: tuple[str, ...]) -> str:
    """The one value the filter requires for `keys` in every `or` alternative, else "".

    Read from the parsed filter, so `dropped` counts as verdict=dropped, while `not
    verdict=dropped` (a negation) and `ns=a or ns=b` (no single namespace) do not."""
    parsed = _parsed(text)
    if parsed is None:
        match = _term_pattern(keys).search(text)
        return match.group(1) if match else ""
    entries = _entries(parsed, keys)
    values = {e.value for e in entries}
    if len(values) != 1 or {e.group for e in entries} != {e.group for e in parsed.entries}:
        return ""
    return values.pop() or ""


def with_term(text: str, keys: tuple[str, ...], value: str) -> str:
    """`text` with its positive `key=...` terms (any spelling in `keys`) replaced by
    `keys[0]=value` in every `or` alternative, or removed when value is "".

    Each alternative gets the term: `a or b` with verdict=dropped is `a verdict=dropped or
    b verdict=dropped`, the drops of both (appending once would only narrow `b`)."""
    parsed = _parsed(text)
    if parsed is None or any(text[e.position:e.position + len(e.token)] != e.token for e in parsed.entries):
        return _with_term_in_text(text, keys, value)
    removed = _entries(parsed, keys)
    edits: list[tuple[int, int, str]] = [(e.position, e.position + len(e.token), "") for e in removed]
    if not value and {e.group for e in parsed.entries} - {e.group for e in parsed.entries if e not in removed}:
        return ""  # an alternative left with no term matches every flow: so does the filter
    if value:
        ends: dict[int, int] = {}
        for entry in parsed.entries:
            ends[entry.group] = max(ends.get(entry.group, 0), entry.position + len(entry.token))
        edits += [(end, end, f" {keys[0]}={value}") for end in ends.values()] or [(len(text), len(text), f" {keys[0]}={value}")]
    # Right to left, an insertion before a removal that ends where it starts: offsets stay valid.
    for start, end, replacement in sorted(edits, key=lambda edit: (edit[0], edit[1] - edit[0]), reverse=True):
        text = text[:start] + replacement + text[end:]
    return _tidy(text)


def _tidy(text: str) -> str:
    """Separators left behind by removed terms: doubled commas and spaces, an `or` with no
    alternative on one side."""
    text = re.sub(r"\s*,\s*(,\s*)+", ", ", text)
    text = re.sub(r"(?:^|\s)or(?:\s+or)+(?=\s|$)", " or", text).strip(" ,")
    text = "" if text == "or" else re.sub(r"^or[\s,]+|[\s,]+or$", "", text)
    return re.sub(r"\s{2,}", " ", text).strip(" ,")


def _with_term_in_text(text: str, keys: tuple[str, ...], value: str) -> str:
    """with_term for a text that does not parse: a plain textual edit of `key=value` terms."""
    stripped = _tidy(_term_pattern(keys).sub("", text))
    if not value:
        return stripped
    return f"{stripped} {keys[0]}={value}".strip()


_ALTERNATIVES = re.compile(r"\s+or\s+", re.IGNORECASE)


def narrowed(current: str, extra: str) -> str:
    """Filter text for flows matching both `current` and `extra`: every alternative of one
    combined with every alternative of the other (`a or b` + `c` -> `a c or b c`)."""
    current, extra = current.strip(), extra.strip()
    if not current:
        return extra
    if not extra:
        return current
    return " or ".join(f"{mine} {theirs}" for mine in _ALTERNATIVES.split(current) for theirs in _ALTERNATIVES.split(extra))
