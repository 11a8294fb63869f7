"""What a generated code looks like, and drawing codes of that shape (no database, no Django).

A `CodeSpec` is a list of segments, each a literal (a prefix, a suffix, the fixed characters of a
pattern) or a run of random symbols from an alphabet. Symbols come from `secrets` (the operating
system's CSPRNG), turned into symbols without bias by rejection sampling: a random byte `b` below the
largest multiple of the alphabet's size under 256 gives symbol `b % size`, any other byte is dropped.
Both steps are done on whole byte strings by `bytes.translate` (C speed), so a million codes of twelve
symbols cost a few hundred milliseconds.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass

from promotions_site.errors import ErrorCode, PromotionError

CODE_MIN_LENGTH = 5
CODE_MAX_LENGTH = 40
# Every character a code may hold: Capillary's alphanumeric codes, plus two separators of ours (a
# pattern's `SUMMER-####`); nothing a URL, a CSV cell or a till's keyboard would mangle.
SEPARATORS = "-_"
CODE_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + SEPARATORS)
_CODE_RE = re.compile(r"^[A-Z0-9_-]+$")

# The default alphabet leaves out the look-alikes 0/O and 1/I/L: 31 symbols.
ALPHANUMERIC = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
NUMERIC = "0123456789"
CHARSETS = {"ALPHANUMERIC": ALPHANUMERIC, "NUMERIC": NUMERIC}

# A request is refused unless its space holds at least this many codes per code the promotion will
# have: a code guessed at random (in the right shape) is then one of the promotion's with probability
# at most 1e-6, and a freshly drawn code collides with an existing one as rarely (docs/codes.md).
SPACE_RATIO = 10**6
COUNT_MAX = 10_000_000  # codes per request (Capillary's limit)

DIGIT_SLOT = "#"
SYMBOL_SLOT = "?"


def code_error(code: str) -> PromotionError | None:
    """Why `code` (already upper-cased) cannot be a promo code, or None: 903, 904 or 902."""
    if len(code) < CODE_MIN_LENGTH:
        return PromotionError(ErrorCode.PROMO_CODE_TOO_SHORT)
    if len(code) > CODE_MAX_LENGTH:
        return PromotionError(ErrorCode.PROMO_CODE_TOO_LONG)
    if not _CODE_RE.match(code):
        return PromotionError(
            ErrorCode.PROMO_CODE_NOT_ALPHANUMERIC,
            "Promo code must be alphanumeric (A-Z, 0-9; the separators - and _ are allowed).",
        )
    return None


def alphabet_parse(*, charset: str, alphabet: str = "") -> str:
    """The symbols of `charset` (ALPHANUMERIC, NUMERIC or CUSTOM with `alphabet`). A custom alphabet is
    upper-cased and de-duplicated (first occurrence kept); it needs at least 2 symbols (400) and only
    the characters of a code (902)."""
    charset = (charset or "ALPHANUMERIC").upper()
    if charset in CHARSETS:
        if alphabet:
            raise PromotionError(ErrorCode.BAD_REQUEST, "alphabet: only with charset CUSTOM.")
        return CHARSETS[charset]
    if charset != "CUSTOM":
        raise PromotionError(ErrorCode.BAD_REQUEST, "charset: one of ALPHANUMERIC, NUMERIC, CUSTOM.")
    symbols = "".join(dict.fromkeys(alphabet.upper()))
    if set(symbols) - CODE_CHARACTERS:
        raise PromotionError(
            ErrorCode.PROMO_CODE_NOT_ALPHANUMERIC,
            "alphabet: only A-Z, 0-9, - and _ may be symbols of a code.",
        )
    if len(symbols) < 2:
        raise PromotionError(ErrorCode.BAD_REQUEST, "alphabet: at least 2 different symbols.")
    return symbols


@dataclass(frozen=True)
class Segment:
    """A literal (`alphabet` empty) or `size` random symbols of `alphabet`."""

    text: str = ""
    alphabet: str = ""
    size: int = 0

    @property
    def length(self) -> int:
        return self.size if self.alphabet else len(self.text)


@dataclass(frozen=True)
class CodeSpec:
    segments: tuple[Segment, ...]

    @property
    def length(self) -> int:
        return sum(segment.length for segment in self.segments)

    @property
    def space(self) -> int:
        """How many different codes the spec can draw."""
        return math.prod(len(s.alphabet) ** s.size for s in self.segments if s.alphabet)

    def matches(self, code: str) -> bool:
        return bool(self.regex().fullmatch(code))

    def regex(self) -> re.Pattern:
        return re.compile(
            "".join(
                f"[{re.escape(s.alphabet)}]{{{s.size}}}" if s.alphabet else re.escape(s.text)
                for s in self.segments
            )
        )

    def draw(self, count: int) -> list[str]:
        """`count` codes drawn at random (they may repeat: the caller's insert drops repeats)."""
        columns: list[list[str] | str] = []
        for segment in self.segments:
            if not segment.alphabet:
                columns.append(segment.text)
                continue
            stream = _symbols(segment.alphabet, count * segment.size)
            size = segment.size
            columns.append([stream[i : i + size] for i in range(0, count * size, size)])
        if len(columns) == 1:
            return columns[0] if isinstance(columns[0], list) else [columns[0]] * count
        return list(
            map("".join, zip(*(c if isinstance(c, list) else [c] * count for c in columns), strict=True))
        )


def _symbols(alphabet: str, count: int) -> str:
    """`count` symbols of `alphabet`, uniform and independent (rejection sampling over CSPRNG bytes)."""
    size = len(alphabet)
    limit = 256 - 256 % size  # bytes at or above `limit` would favour the first symbols: dropped
    table = bytes(ord(alphabet[b % size]) if b < limit else 0 for b in range(256))
    drop = bytes(range(limit, 256))
    parts: list[bytes] = []
    have = 0
    while have < count:
        want = count - have
        # Enough bytes on average for what is missing, plus a margin, so one round usually suffices.
        raw = secrets.token_bytes(want * 256 // limit + 64)
        part = raw.translate(table, drop)
        parts.append(part)
        have += len(part)
    return b"".join(parts)[:count].decode("ascii")


def spec_build(
    *,
    length: int | None = None,
    charset: str = "ALPHANUMERIC",
    alphabet: str = "",
    prefix: str = "",
    suffix: str = "",
    pattern: str = "",
) -> CodeSpec:
    """The spec of a generation request: a `pattern` (`#` a digit, `?` a symbol of the alphabet, any
    other character itself, upper-cased), or `length` characters in all with an optional `prefix`
    and `suffix` around random symbols. Errors: 400 pattern with length, prefix or suffix, a pattern
    without `#` or `?`, no length, a prefix and suffix leaving no random symbol; 902 a character a
    code cannot hold; 903 / 904 a code shorter than 5 or longer than 40."""
    symbols = alphabet_parse(charset=charset, alphabet=alphabet)
    prefix, suffix, pattern = (prefix or "").upper(), (suffix or "").upper(), (pattern or "").upper()
    if pattern:
        if length or prefix or suffix:
            raise PromotionError(
                ErrorCode.BAD_REQUEST, "pattern: send it alone, without length, prefix or suffix."
            )
        segments = _pattern_segments(pattern, symbols)
        if not any(s.alphabet for s in segments):
            raise PromotionError(ErrorCode.BAD_REQUEST, "pattern: needs at least one # or ? to draw.")
    else:
        if length is None:
            raise PromotionError(ErrorCode.BAD_REQUEST, "length: required (or send a pattern).")
        body = length - len(prefix) - len(suffix)
        if body < 1 and CODE_MIN_LENGTH <= length <= CODE_MAX_LENGTH:
            raise PromotionError(
                ErrorCode.BAD_REQUEST,
                "length: must leave at least one random symbol after prefix and suffix.",
            )
        segments = [Segment(text=prefix), Segment(alphabet=symbols, size=max(body, 0)), Segment(text=suffix)]
        segments = [s for s in segments if s.length]
    spec = CodeSpec(tuple(segments))
    literal = "".join(s.text for s in segments)
    if set(literal) - CODE_CHARACTERS:
        raise PromotionError(
            ErrorCode.PROMO_CODE_NOT_ALPHANUMERIC,
            "prefix, suffix and pattern: only A-Z, 0-9, - and _ (and # ? in a pattern).",
        )
    length = spec.length if pattern else length
    if length < CODE_MIN_LENGTH:
        raise PromotionError(ErrorCode.PROMO_CODE_TOO_SHORT)
    if length > CODE_MAX_LENGTH:
        raise PromotionError(ErrorCode.PROMO_CODE_TOO_LONG)
    return spec


def _pattern_segments(pattern: str, symbols: str) -> list[Segment]:
    segments: list[Segment] = []
    for run in re.finditer(r"#+|\?+|[^#?]+", pattern):
        text = run.group()
        if text[0] == DIGIT_SLOT:
            segments.append(Segment(alphabet=NUMERIC, size=len(text)))
        elif text[0] == SYMBOL_SLOT:
            segments.append(Segment(alphabet=symbols, size=len(text)))
        else:
            segments.append(Segment(text=text))
    return segments


def space_check(*, spec: CodeSpec, count: int, existing: int = 0) -> None:
    """PROMO_CODE_SPACE_TOO_SMALL (4002) unless the spec's space holds SPACE_RATIO codes for each
    code the promotion will have (`existing` + `count`)."""
    needed = (existing + count) * SPACE_RATIO
    if spec.space < needed:
        raise PromotionError(
            ErrorCode.PROMO_CODE_SPACE_TOO_SMALL,
            f"{count:,} codes (with the {existing:,} the promotion has) need at least {needed:.3g} possible "
            f"codes (a million per code); this length and alphabet give {spec.space:.3g}: make the codes "
            "longer or the alphabet larger.",
        )
