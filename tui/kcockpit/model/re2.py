"""Go RE2 regexes (what Hubble's dns_query, http_path and http_url filters take) run with `re`.

Most RE2 syntax means the same in Python. What does not, and would silently match something
else, is rewritten: `\\d`, `\\w`, `\\s` and their negations (ASCII in RE2, Unicode in
Python), POSIX classes inside brackets (`[[:digit:]]`, `[[:^space:]]`; Python reads
`[[:digit:]]` as a set of the characters `[:digt` followed by a literal `]`), octal escapes
(`\\101`, which Python reads as a backreference), `\\Q...\\E` literal text and `\\z`.
What Python has and RE2 lacks (lookarounds, backreferences) is refused.
"""

from __future__ import annotations

import re

__all__ = ["RE2Error", "compile_re2"]


class RE2Error(ValueError):
    """A pattern Hubble's server (Go's regexp) would refuse; str() says why."""


# RE2's POSIX classes, all ASCII, as code point ranges.
_POSIX_CLASSES: dict[str, tuple[tuple[int, int], ...]] = {
    "alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "ascii": ((0x00, 0x7F),),
    "blank": ((0x09, 0x09), (0x20, 0x20)),
    "cntrl": ((0x00, 0x1F), (0x7F, 0x7F)),
    "digit": ((0x30, 0x39),),
    "graph": ((0x21, 0x7E),),
    "lower": ((0x61, 0x7A),),
    "print": ((0x20, 0x7E),),
    "punct": ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "space": ((0x09, 0x0D), (0x20, 0x20)),
    "upper": ((0x41, 0x5A),),
    "word": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A), (0x5F, 0x5F)),
    "xdigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
}
# RE2's Perl classes are ASCII too (Python's are Unicode, and its \s also takes \v).
_PERL_CLASSES = {"d": _POSIX_CLASSES["digit"], "w": _POSIX_CLASSES["word"],
                 "s": ((0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20))}
_MAX_CODE_POINT = 0x10FFFF
_UNSUPPORTED = re.compile(r"\(\?<?[=!]|\(\?P=")  # lookarounds, named backreferences
_OCTAL = re.compile(r"[0-7]{1,3}")


def _complement(ranges: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    out, start = [], 0
    for low, high in sorted(ranges):
        if low > start:
            out.append((start, low - 1))
        start = max(start, high + 1)
    if start <= _MAX_CODE_POINT:
        out.append((start, _MAX_CODE_POINT))
    return out


def _set_items(ranges) -> str:
    return "".join(f"\\U{low:08x}" + (f"-\\U{high:08x}" if high > low else "") for low, high in ranges)


def _posix_class(pattern: str, start: int) -> tuple[str, int] | None:
    """At `[:` inside a bracket: the Python set items and the index after `:]`, or None when
    no `:]` follows (then RE2 reads the `[` as a literal)."""
    end = pattern.find(":]", start + 2)
    if end < 0:
        return None
    name = pattern[start + 2 : end]
    negated = name.startswith("^")
    ranges = _POSIX_CLASSES.get(name.removeprefix("^"))
    if ranges is None:
        raise RE2Error(f"invalid character class {pattern[start:end + 2]!r} "
                       f"(RE2 knows [:{':], [:'.join(_POSIX_CLASSES)}:])")
    return _set_items(_complement(ranges) if negated else ranges), end + 2


def translate(pattern: str) -> str:
    """The Python `re` pattern that matches what the RE2 `pattern` matches."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    class_start = 0  # index of the first character after `[` or `[^`
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            escaped = pattern[i + 1]
            if escaped == "Q" and not in_class:
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
                out.append(re.escape(literal))
                i = n if end < 0 else end + 2
                continue
            if escaped.isdigit():
                # Go reads \0, \012, \101 as octal; a lone \1-\9 would be a backreference.
                digits = _OCTAL.match(pattern, i + 1)
                if digits is None or (escaped != "0" and len(digits.group()) == 1):
                    raise RE2Error("backreferences (\\1 ... \\9) are not RE2 syntax")
                out.append(f"\\u{int(digits.group(), 8):04x}")
                i = digits.end()
                continue
            perl = _PERL_CLASSES.get(escaped.lower())
            if perl is not None:
                items = _set_items(_complement(perl) if escaped.isupper() else perl)
                out.append(items if in_class else f"[{items}]")
            else:
                out.append("\\Z" if escaped == "z" else pattern[i : i + 2])
            i += 2
            continue
        if not in_class:
            if ch == "[":
                in_class = True
                out.append("[")
                i += 1
                if pattern.startswith("^", i):
                    out.append("^")
                    i += 1
                class_start = i
                continue
            out.append(ch)
            i += 1
            continue
        if ch == "]" and i > class_start:
            in_class = False
            out.append("]")
        elif ch == "[":
            posix = _posix_class(pattern, i) if pattern.startswith("[:", i) else None
            if posix is not None:
                items, i = posix
                out.append(items)
                continue
            out.append("\\[")  # a literal bracket in RE2; Python would warn of a nested set
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def compile_re2(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern for `search` (Go's MatchString); raises RE2Error like Go would."""
    if _UNSUPPORTED.search(pattern):
        raise RE2Error("lookarounds and named backreferences are not RE2 syntax")
    try:
        return re.compile(translate(pattern))
    except re.error as err:
        raise RE2Error(f"not a valid regular expression: {err}") from None
