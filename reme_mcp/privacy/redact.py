"""Secret redaction: API keys, tokens, passwords and private keys never reach the store.

Agents paste whatever they are looking at into memory: a failing curl command with its
`Authorization` header, a `.env` file, a stack trace with a database URL. A memory is
stored for good, recalled into other chats and exported, so a secret stored once leaks
forever. `redact` replaces each secret with `[REDACTED:<kind>]` and leaves every other
byte exactly as it was.

Every pattern is anchored, either on a vendor prefix (`sk-proj-`, `ghp_`, `AKIA`, `eyJ`…)
or on an explicit context (`password=`, `Bearer `, `aws_secret_access_key:`, `user:pw@`).
There is deliberately no "high-entropy string" rule: memories are full of hex ids, commit
SHAs, UUIDs and content hashes (a memory id is 16 lowercase hex chars), and a redaction
is irreversible, so a false positive silently destroys the very memory we meant to keep.

Overlaps are resolved by priority: the table is ordered most specific first, and a match
that overlaps an earlier one is merged into it (one secret, one count, the earlier kind),
so a PEM block, a JWT after `Bearer` or a GitHub token inside a URL counts once. Text that
already is a `[REDACTED:…]` placeholder is never matched again, so redaction is idempotent.

Assignment values (`password=…`, `token: …`) are left alone when they are obviously not
a secret: empty, a placeholder (`***`, `xxx`, `<password>`, `${VAR}`, `$VAR`, `{{var}}`,
`%s`, `changeme`, `your_api_key`, `None`, `null`, `true`, the word `password` itself…),
a type name (`password: str`), or, unquoted, code (`token = get_token()`,
`api_key = os.environ[...]`, `password=self.password`). Token-like keys (`token`,
`secret`, `api_key`…) also need at least 8 characters, not a number and not a memory id,
so `token: 512` stays; a `pwd=` value that is a path (`PWD=/home/alice`) stays. Bare
values stop at whitespace, a quote, `,`, `&` or `;` (and a trailing `)`); quoted values
run to the closing quote, spaces included.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import regex

CUSTOM_SECONDS = 1.0  # extra patterns are user regexes; `regex` can stop a runaway one, `re` cannot
PLACEHOLDER = re.compile(r"\[REDACTED:[A-Za-z0-9_]+\]")


@dataclass(frozen=True)
class Redaction:
    text: str  # the text with every secret replaced by "[REDACTED:<kind>]"
    count: int  # how many secrets were replaced
    kinds: tuple[str, ...]  # kind of each replacement, in text order


# --- building blocks for "key = value" assignments ------------------------------------

_KEY_END = r"""\\?["'`]?[ \t]*(?:=>|:=|==?|:)[ \t]*"""  # closing quote of the key, then = : => :=
_NOT_SECRET = r"""(?i:
    \*+ | x{3,} | \.{3} | … | -+ | <[^<>\n]*> | \$\{[^}\s]*\} | \$[A-Za-z_]\w* | \{\{[^}]*\}\} | %s | \?
  | none | null | nil | true | false | undefined | empty | redacted | changeme | change[_-]?me
  | password | passwd | secret | your[_-][\w-]* | str | string | bytes | secretstr | any )"""
_CODE = r"""(?:[A-Za-z_][\w.]*[(\[]
  | (?:self|cls|this|os|sys|env|process|settings|config|cfg|conf|args|opts|options|params|request|req|ctx|secrets)\.
  | [rbfuRBFU]{1,2}["'])"""
_VALUE_END = r"""(?(q)\\?["'`]|(?:["'`\s,&;)\]}]|$))"""  # quoted: the closing quote; bare: a stop char


def _assignment(keys: str, *, min_len: int = 1, skip: str = "") -> re.Pattern[str]:
    """`<prefix><key><sep><value>`; group "v" is the value, quoted or not."""
    skip = skip or r"(?!)"
    return re.compile(
        rf"""(?<![\w./-])[\w.-]*?(?i:{keys}){_KEY_END}  # not after "/": URL user names
        (?P<q>\\?["'`])?                                   # an opening quote makes a quoted value
        (?!(?:{_NOT_SECRET}|{skip}){_VALUE_END})            # placeholder, type name, or excluded value
        (?(q)|(?!{_CODE}))                                  # unquoted code is not a literal secret
        (?P<v>(?(q)[^"'`\\\n]{{{min_len},}}                 # quoted: up to the closing quote
               |[^\s"'`,&;]{{{min_len},}}?(?=[)\]}}>]*(?:[\s"'`,&;]|$))))  # bare: to a stop char
        """,
        re.VERBOSE,
    )


def _prefixed(body: str) -> re.Pattern[str]:
    """A vendor-prefixed token: not glued to a longer word on either side."""
    return re.compile(rf"(?<![A-Za-z0-9_-]){body}(?![A-Za-z0-9_-])")


# --- the table: (kind, pattern, group to redact), most specific first --------------------

_RULES: tuple[tuple[str, re.Pattern[str], int | str], ...] = (
    (
        "private_key",  # the whole PEM block; a truncated one (no END line) runs to the end of the text
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r".*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.DOTALL,
        ),
        0,
    ),
    ("anthropic_key", _prefixed(r"sk-ant-[A-Za-z0-9_-]{20,}"), 0),
    (
        "openai_key",  # sk-proj-/sk-svcacct-/sk-admin- bodies have dashes; legacy sk- bodies are base62 with a digit
        _prefixed(r"sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|(?=[A-Za-z]*[0-9])[A-Za-z0-9]{20,})"),
        0,
    ),
    ("github_token", _prefixed(r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{82,})"), 0),
    ("gitlab_token", _prefixed(r"glpat-[A-Za-z0-9_-]{20,}"), 0),
    ("slack_token", _prefixed(r"(?:xoxe\.)?(?:xox[abeoprs]|xapp)-(?=[A-Za-z0-9-]*[0-9])[A-Za-z0-9-]{10,}"), 0),
    ("stripe_key", _prefixed(r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"), 0),
    ("google_api_key", _prefixed(r"AIza[A-Za-z0-9_-]{35}"), 0),
    ("huggingface_token", _prefixed(r"hf_[A-Za-z]{34}"), 0),
    (
        "aws_access_key_id",
        re.compile(
            r"(?<![A-Za-z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}"
            r"(?![A-Za-z0-9])"
        ),
        0,
    ),
    ("jwt", _prefixed(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), 0),
    (
        "aws_secret_key",  # 40 base64 chars, only right after an AWS secret-key name
        re.compile(
            r"""(?i:aws[_-]?secret[_-]?(?:access[_-]?)?key|secret[_-]?access[_-]?key)"""
            r"""\\?["'`]?[ \t]*(?:=>|:=|=|:|[ \t])[ \t]*\\?["'`]?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"""
        ),
        1,
    ),
    (
        "url_credentials",  # scheme://user:PASSWORD@host
        re.compile(
            rf"""(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s:@/?#]*:(?!(?:{_NOT_SECRET})@)([^\s@/?#]+)@""",
            re.VERBOSE,
        ),
        1,
    ),
    (
        "basic_auth",  # Authorization: Basic base64(user:password)
        re.compile(r"""(?i:authorization)\\?["']?[ \t]*[:=][ \t]*\\?["']?(?i:basic)[ \t]+([A-Za-z0-9+/]{8,}={0,2})"""),
        1,
    ),
    ("bearer_token", re.compile(r"(?i:\bbearer)[ \t]+((?=[A-Za-z0-9._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{16,})"), 1),
    ("password", _assignment(r"password|passwd|passphrase"), "v"),
    ("password", _assignment(r"pwd", skip=r"[~/][^\s\"'`,&;]*"), "v"),
    (
        "password",  # token-like keys: 8+ characters, not a number (`token: 512`), not a 16-hex memory id
        _assignment(r"secret|token|(?:api|secret|private|access)[_-]?key", min_len=8, skip=r"[0-9.,_]+|[0-9a-f]{16}"),
        "v",
    ),
)


# --- user patterns ---------------------------------------------------------------------


@lru_cache(maxsize=64)
def _custom_rules(patterns: tuple[str, ...]) -> tuple[tuple[str, regex.Pattern[str], int | str], ...]:
    """Compile user regexes once. A named group `secret` narrows the redaction to that group."""
    rules = []
    for pattern in patterns:
        try:
            compiled = regex.compile(pattern, regex.VERSION0)
        except (regex.error, ValueError, OverflowError, TypeError) as exc:
            raise ValueError(f"extra redaction pattern {pattern!r} is not a valid regular expression: {exc}") from None
        rules.append(("custom", compiled, "secret" if "secret" in compiled.groupindex else 0))
    return tuple(rules)


def _matches(pattern: re.Pattern[str] | regex.Pattern[str], text: str) -> Iterator[Any]:
    if isinstance(pattern, re.Pattern):
        yield from pattern.finditer(text)
        return
    try:
        yield from pattern.finditer(text, timeout=CUSTOM_SECONDS)
    except TimeoutError:
        raise ValueError(
            f"extra redaction pattern {pattern.pattern!r} took longer than {CUSTOM_SECONDS:g} s; "
            "simplify it (avoid nested repeats such as (a+)+)."
        ) from None


# --- public API ------------------------------------------------------------------------


def redact(text: str, extra_patterns: Sequence[str] = ()) -> Redaction:
    """Replace every secret in `text` with `[REDACTED:<kind>]`; `extra_patterns` redact as kind "custom"."""
    rules = _RULES + _custom_rules(tuple(extra_patterns))
    taken = [(m.start(), m.end()) for m in PLACEHOLDER.finditer(text)]  # never redact a redaction
    spans: list[tuple[int, int, int, str]] = []  # (start, end, rank, kind), disjoint
    for rank, (kind, pattern, group) in enumerate(rules):
        for match in _matches(pattern, text):
            start, end = match.span(group)
            if start == end or any(a < end and start < b for a, b in taken):
                continue
            claim = (start, end, rank, kind)
            for span in [span for span in spans if span[0] < end and start < span[1]]:
                spans.remove(span)  # one secret, counted once: the more specific (earlier) kind wins
                claim = (min(claim[0], span[0]), max(claim[1], span[1]), *min(claim[2:], span[2:]))
            spans.append(claim)
    spans.sort()
    pieces, position = [], 0
    for start, end, _, kind in spans:
        pieces += [text[position:start], f"[REDACTED:{kind}]"]
        position = end
    pieces.append(text[position:])
    return Redaction("".join(pieces), len(spans), tuple(kind for *_, kind in spans))


def redact_value(value: Any, extra_patterns: Sequence[str] = ()) -> tuple[Any, int]:
    """Redact every string inside a JSON-like value (dict keys untouched, values recursively, lists);
    returns (new value, count)."""
    if isinstance(value, str):
        result = redact(value, extra_patterns)
        return result.text, result.count
    if isinstance(value, dict):
        pairs = {key: redact_value(item, extra_patterns) for key, item in value.items()}
        return {key: item for key, (item, _) in pairs.items()}, sum(count for _, count in pairs.values())
    if isinstance(value, (list, tuple)):
        items = [redact_value(item, extra_patterns) for item in value]
        redacted = [item for item, _ in items]
        return (redacted if isinstance(value, list) else tuple(redacted)), sum(count for _, count in items)
    return value, 0
