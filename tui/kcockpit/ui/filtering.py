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
        return f"✗ {message} (column {position + 1})"
    return f"✗ {message}"


def _term_pattern(keys: tuple[str, ...]) -> re.Pattern[str]:
    # A whole, positive `key=value` term: not part of from:/to:/either: or a negation.
    names = "|".join(re.escape(key) for key in keys)
    return re.compile(rf"(?:^|(?<=[\s,]))(?:{names})=([^\s,]+)")


def term_value(text: str, keys: tuple[str, ...]) -> str:
    match = _term_pattern(keys).search(text)
    return match.group(1) if match else ""


def with_term(text: str, keys: tuple[str, ...], value: str) -> str:
    """`text` with its `key=...` terms (any spelling in `keys`) replaced by `keys[0]=value`,
    or removed when value is ""."""
    stripped = _term_pattern(keys).sub("", text)
    stripped = re.sub(r"\s*,\s*(,\s*)+", ", ", stripped).strip(" ,")
    stripped = re.sub(r"\s{2,}", " ", stripped)
    if not value:
        return stripped
    return f"{stripped} {keys[0]}={value}".strip()
