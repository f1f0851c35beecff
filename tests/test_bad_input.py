"""Hand-picked bad input, through every face where it applies: a clear error or a correct answer,
a server that stays up, and a store that a refused call leaves as it was.

The cases test_fuzz.py reaches only by chance, or cannot send at all: a 10 MB text,
metadata nested 10,000 levels deep, invalid UTF-8 and lone surrogates on the raw MCP
transports and in HTTP bodies, a lone surrogate in every string field, NUL and control
characters, negative and enormous numbers, regular expressions that backtrack
catastrophically, and paths (and links planted in the store) that lead out of it.
"""

from __future__ import annotations

import json
import select
import subprocess
import time
from typing import Any

import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from conftest import REME, server_env
from faces import (
    AAAA_FILE,
    LOG_FILE,
    ROLLBACK,
    SECRET,
    Answer,
    Face,
    HttpFace,
    StoreState,
    assert_still_serves,
    seeded_face,
    tree,
    unchanged,
)

from reme_mcp.flows import MAX_DEPTH
from reme_mcp.working.files import DIRECTORY
from reme_mcp.working.search import GREP_SECONDS

EVERY_FACE = ["python", "mcp-stdio", "mcp-http", "http"]
# An MCP client cannot put a lone surrogate or 10,000 levels of nesting into a message (the SDK's
# encoder refuses): those go through Python and HTTP here, and raw bytes test the MCP transports below.
ANY_JSON_FACE = ["python", "http"]


@pytest.fixture(scope="module")
def portal():
    with start_blocking_portal() as portal:
        yield portal


@pytest.fixture(scope="module")
def face(request: pytest.FixtureRequest, portal, tmp_path_factory) -> Face:
    """One seeded server per face for the whole module (tests choose faces with indirect parametrize)."""
    with seeded_face(request.param, portal, tmp_path_factory.mktemp(request.param)) as face:
        yield face


def on(faces: list[str]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("face", faces, indirect=True)


def refused(face: Face, flow: str, arguments: Any, *expected: str) -> Answer:
    """The call is refused with a message holding each of `expected`, and the store and outside are untouched."""
    before, outside = StoreState.read(face.store_dir), tree(face.outside)
    answer = face.call(flow, arguments)
    assert not answer.ok and not answer.internal, f"{face.name} {flow}: {answer.text[:300]}"
    assert answer.status is None or 400 <= answer.status < 500, f"{face.name} {flow}: HTTP {answer.status}"
    for part in expected:
        assert part in answer.text, f"{face.name} {flow}: {part!r} not in {answer.text[:300]!r}"
    assert SECRET not in answer.text
    assert unchanged(before, StoreState.read(face.store_dir)), f"{face.name} {flow} was refused but changed the store"
    assert tree(face.outside) == outside
    return answer


def answered(face: Face, flow: str, arguments: Any) -> Answer:
    answer = face.call(flow, arguments)
    assert answer.ok, f"{face.name} {flow}: {answer.text[:300]}"
    assert SECRET not in answer.text and SECRET not in json.dumps(answer.data)
    return answer


# -- size ------------------------------------------------------------------------------------------------------

TEN_MB = "x" * 10_000_000


@on(EVERY_FACE)
def test_ten_megabytes_of_text_are_refused_by_the_text_limit(face: Face) -> None:
    refused(face, "remember", {"text": TEN_MB}, "10,000,000 characters", "limits.max_text_chars")
    refused(face, "train_memory", {"episodes": [{"text": TEN_MB}], "workspace_id": "big"}, "limits.max_text_chars")
    refused(face, "recall", {"query": TEN_MB}, "'query'", "at most 10000 characters")
    if isinstance(face, HttpFace):
        assert face.client.get("/health").json()["status"] == "ok"
    assert_still_serves(face, "10 MB text")


@on(EVERY_FACE)
def test_metadata_nested_past_the_limit_is_refused_naming_it(face: Face) -> None:
    refused(face, "remember", {"text": "deep", "metadata": nest(MAX_DEPTH + 5)}, "'metadata'", f"{MAX_DEPTH} levels")
    answered(face, "remember", {"text": "deep enough", "metadata": nest(MAX_DEPTH - 2)})


@on(ANY_JSON_FACE)
def test_metadata_nested_10000_levels_is_a_clear_error_not_a_recursion_error(face: Face) -> None:
    if isinstance(face, HttpFace):  # json.dumps cannot write it: the body is built by hand
        for depth, expected in [(500, f"{MAX_DEPTH} levels"), (10_000, "nests deeper")]:  # json.loads stops near 1,000
            body = b'{"text": "deeper", "metadata": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
            answer = face.post("/remember", body)
            assert answer.status == 400 and expected in answer.text, answer.text
    else:
        refused(face, "remember", {"text": "deeper", "metadata": nest(10_000)}, "'metadata'", f"{MAX_DEPTH} levels")
    assert_still_serves(face, "10,000 levels of metadata")


def nest(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


# -- bytes that are not UTF-8, JSON that is not JSON ------------------------------------------------------------


@on(["http"])
def test_http_bodies_that_are_not_json_get_a_400_that_says_why(face: HttpFace) -> None:
    before = StoreState.read(face.store_dir)
    cases = [
        (b'{"text": "caf\xe9 \xff\xfe"}', "not valid JSON"),  # Latin-1 and stray bytes, not UTF-8
        (b"\xef\xbb\xbf\xff", "not valid JSON"),
        (b'{"query": "x", "top_k": ' + b"1" * 5000 + b"}", "not valid JSON"),  # past Python's 4,300 digits
        (b'{"text": "x", "metadata": {"score": NaN}}', "'metadata.score' is nan"),
        (b'{"text": "x", "ttl": Infinity}', "'ttl' is inf"),
        (b'{"text": "\\ud800 alone"}', "lone surrogate"),
        (b'["text", "x"]', "JSON object"),
        (b'"just a string"', "JSON object"),
        (b"{}", "'text' is required"),
        (b"[" * 100_000, "nests deeper"),
    ]
    for body, expected in cases:
        answer = face.post("/remember", body)
        assert answer.status == 400 and not answer.internal, (body[:40], answer.text)
        assert expected in answer.text, (body[:40], answer.text)
    assert unchanged(before, StoreState.read(face.store_dir))
    assert_still_serves(face, "bodies that are not JSON")


def test_mcp_stdio_answers_every_line_it_cannot_read_and_keeps_serving(tmp_path) -> None:
    """Raw bytes on the stdio server's stdin: invalid UTF-8 inside a string is read as U+FFFD; a line the
    SDK cannot parse (garbage, a lone surrogate escape, 10,000 levels, a 5,000-digit number) gets a
    JSON-RPC error with its id instead of silence, so no client waits forever."""
    with RawStdio(tmp_path) as server:
        stored = server.call(2, "remember", b'{"text": "caf\xc3\xa9 and caf\xe9 \xff", "workspace_id": "raw"}')
        assert stored["result"]["isError"] is False
        text = stored["result"]["structuredContent"]["memory"]["text"]
        assert text == "café and caf\ufffd \ufffd"
        server.send(b"\xff\xfe\x00 not json at all")
        assert server.answer(None)["error"]["code"] == -32700
        unreadable = {
            3: b'{"query": "\\ud800"}',
            4: b'{"text": "deep", "metadata": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
            5: b'{"query": "x", "top_k": ' + b"9" * 5000 + b"}",
        }
        for request_id, arguments in unreadable.items():
            error = server.call(request_id, "recall", arguments)["error"]
            assert error["code"] == -32700 and "Parse error" in error["message"], error
        nan = server.call(6, "remember", b'{"text": "x", "metadata": {"a": NaN}}')["result"]
        assert nan["isError"] and "'metadata.a' is nan" in nan["content"][0]["text"]
        found = server.call(7, "recall", b'{"query": "caf\xc3\xa9", "workspace_id": "raw"}')["result"]
        assert found["structuredContent"]["memories"][0]["text"] == text


HANDSHAKE = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}


class RawStdio:
    """`reme` over stdio, spoken to in raw bytes, one JSON-RPC message per line."""

    def __init__(self, store_dir):
        self.store_dir = store_dir

    def __enter__(self) -> "RawStdio":
        self.proc = subprocess.Popen(
            [REME, "backend=mcp", "mcp.transport=stdio", f"store_dir={self.store_dir}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=server_env(),
        )
        self.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HANDSHAKE}).encode())
        assert "result" in self.answer(1)
        self.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self.proc.poll() is None, "the server died"
        self.proc.stdin.close()
        self.proc.wait(timeout=30)

    def send(self, line: bytes) -> None:
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def call(self, request_id: int, tool: str, arguments: bytes) -> dict[str, Any]:
        head = b'{"jsonrpc": "2.0", "id": %d, "method": "tools/call", "params": {"name": "%s", "arguments": ' % (
            request_id, tool.encode())
        self.send(head + arguments + b"}}")
        return self.answer(request_id)

    def answer(self, request_id: int | None, seconds: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], deadline - time.monotonic())
            if ready:
                line = self.proc.stdout.readline()
                assert line, "the server closed stdout"
                message = json.loads(line)
                if message.get("id") == request_id:
                    return message
        raise AssertionError(f"no answer to request {request_id} within {seconds} s")


@on(["mcp-http"])
def test_mcp_streamable_http_answers_bodies_it_cannot_read_with_a_parse_error(face: Face) -> None:
    url = f"http://127.0.0.1:{face.port}/mcp"
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    opened = httpx.post(url, headers=headers, content=json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HANDSHAKE}))
    headers |= {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
    call = b'{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "remember", "arguments": %s}}'
    before = StoreState.read(face.store_dir)
    for arguments in (b'{"text": "caf\xe9"}', b'{"text": "\\ud800"}',
                      b'{"text": "x", "metadata": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"):
        response = httpx.post(url, headers=headers, content=call % arguments, timeout=60)
        assert response.status_code == 400 and response.json()["error"]["code"] == -32700, response.text
    assert unchanged(before, StoreState.read(face.store_dir))
    assert_still_serves(face, "bodies that are not JSON")


# -- lone surrogates, in every string field that is stored or names a path ------------------------------------

EVERY_STRING_FIELD = [
    ("remember", {"text": "t", "keywords": ["k"], "tags": ["g"], "workspace_id": "w", "ttl": "30d",
                  "metadata": {"key": "value", "list": ["item"]}}),
    ("remember", {"text": "t", "expires_at": "2100-01-01T00:00:00Z"}),
    ("recall", {"query": "q", "workspace_id": "fuzz", "tags": ["seed"], "memory_type": ["episode"], "tag_mode": "any",
                "after": "7d", "before": "now"}),
    ("forget", {"memory_id": "m", "workspace_id": "fuzz"}),
    ("forget", {"about": "noodle", "query": "lunch", "confirm": "c0de", "workspace_id": "fuzz"}),
    ("consolidate", {"workspace_id": "fuzz", "mode": "dedup", "memory_type": "episode"}),
    ("train_memory", {"episodes": [{"text": "t", "keywords": ["k"], "id": "e1", "time": "2026-01-01T00:00:00Z",
                                    "metadata": {"key": "value"}}], "workspace_id": "w"}),
    ("vector_store", {"action": "load", "pack": "coding-agent", "workspace_id": "w"}),
    ("vector_store", {"action": "dump", "path": "dump", "workspace_id": "fuzz"}),
    ("vector_store", {"action": "copy", "src_workspace_id": "fuzz", "workspace_id": "w"}),
    ("vector_store", {"action": "delete_ids", "memory_ids": ["m"], "workspace_id": "fuzz"}),
    ("vector_store", {"action": "retention", "retention": "30d", "workspace_id": "fuzz"}),
    ("summary_working_memory", {
        "messages": [{"role": "user", "content": "c", "name": "n"},
                     {"role": "assistant", "tool_calls": [{"id": "i", "type": "function",
                                                           "function": {"name": "f", "arguments": "{}"}}]},
                     {"role": "tool", "tool_call_id": "i", "content": [{"type": "text", "text": "t"}]}],
        "working_summary_mode": "compact", "chat_id": "c", "store_dir": "s"}),
    ("grep_working_memory", {"pattern": "p", "chat_id": "seed", "store_dir": "s"}),
    ("grep_working_memory", {"pattern": "p", "file": LOG_FILE}),
    ("read_working_memory", {"file": LOG_FILE}),
    ("summarize_trajectory", {"trajectories": [{"messages": [{"role": "user", "content": "c"}], "task_id": "t",
                                                "metadata": {"time": "2026-01-01"}}],
                              "kind": "auto", "workspace_id": "w"}),
    ("retrieve_task_memory", {"query": "q", "workspace_id": "fuzz"}),
    ("add_tool_call_result", {"tool_call_results": [{"tool_name": "t", "input": {"key": "value"}, "output": "o",
                                                     "create_time": "2026-01-01T00:00:00Z", "note": "extra"}],
                              "workspace_id": "w"}),
    ("add_tool_call_result", {"tool_call_results": [{"tool_name": "t", "input": "as text"}]}),
    ("retrieve_tool_memory", {"tool_names": ["t"], "workspace_id": "fuzz"}),
]


def string_leaves(value: Any, path: tuple = ()) -> list[tuple[tuple, bool]]:
    """(path, is_key) of every string in a JSON value: the values, and the keys of objects."""
    if isinstance(value, str):
        return [(path, False)]
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, item in items:
        if isinstance(value, dict) and path:
            found.append(((*path, key), True))  # the keys of nested objects are stored too
        found += string_leaves(item, (*path, key))
    return found


def with_surrogate(value: Any, path: tuple, is_key: bool) -> Any:
    if not path:
        return value + "\ud800"
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        if is_key and not rest:
            return {(k + "\udc80" if k == head else k): v for k, v in value.items()}
        return {k: (with_surrogate(v, rest, is_key) if k == head else v) for k, v in value.items()}
    return [with_surrogate(v, rest, is_key) if i == head else v for i, v in enumerate(value)]


SURROGATE_CASES = [
    pytest.param(flow, path, is_key, arguments, id=f"{flow}#{row}:{'.'.join(map(str, path))}{':key' if is_key else ''}")
    for row, (flow, arguments) in enumerate(EVERY_STRING_FIELD)
    for path, is_key in string_leaves(arguments)
]


@on(ANY_JSON_FACE)
@pytest.mark.parametrize(("flow", "path", "is_key", "arguments"), SURROGATE_CASES)
def test_a_lone_surrogate_in_any_string_field_is_refused_naming_the_field(
    face: Face, flow: str, path: tuple, is_key: bool, arguments: dict[str, Any]
) -> None:
    refused(face, flow, with_surrogate(arguments, path, is_key), "lone surrogate", f"'{path[0]}")


# -- NUL and control characters --------------------------------------------------------------------------------


@on(EVERY_FACE)
def test_nul_and_control_characters_in_a_memory_come_back_exactly(face: Face) -> None:
    text = "Door code 4\x0012\x07 for the \x1b[31mred\x1b[0m shed;\r\nbidi \u202eevil\u202c, zero\u200bwidth."
    keywords = ["door\x00code", "shed\x1b"]
    metadata = {"note\x00": "\x01\x02", "nested": ["\x7f"]}
    stored = answered(face, "remember",
                      {"text": text, "keywords": keywords, "metadata": metadata, "workspace_id": "ctl"})
    found = answered(face, "recall", {"query": "door code for the red shed", "workspace_id": "ctl", "top_k": 1})
    [hit] = found.data["memories"]
    assert (hit["id"], hit["text"], hit["keywords"], hit["metadata"]) == (
        stored.data["memory"]["id"], text, keywords, metadata)


CONTROL_IN_NAMES = [
    ("remember", {"text": "x", "tags": ["a\x00b"]}, "'tags.0'"),
    ("remember", {"text": "x", "tags": ["bell\x07"]}, "'tags.0'"),
    ("remember", {"text": "x", "workspace_id": "ws\x00"}, "'workspace_id'"),
    ("remember", {"text": "x", "workspace_id": "ws\n"}, "'workspace_id'"),  # `$` must not match before a newline
    ("recall", {"query": "x", "workspace_id": "fuzz\r"}, "'workspace_id'"),
    ("train_memory", {"episodes": [{"text": "x", "id": "e\x00"}], "workspace_id": "w"}, "'episodes.0.id'"),
    ("summary_working_memory", {"messages": [{"role": "user", "content": "x"}], "chat_id": "c\x00"}, "'chat_id'"),
    ("summary_working_memory", {"messages": [{"role": "user", "content": "x"}], "chat_id": "c\n"}, "'chat_id'"),
    ("summary_working_memory", {"messages": [{"role": "user", "content": "x"}], "store_dir": "s\x00"}, "store_dir"),
    ("summary_working_memory", {
        "messages": [{"role": "assistant", "tool_calls": [{"id": "call\x00", "function": {"name": "cat"}}]},
                     {"role": "tool", "tool_call_id": "call\x00", "content": "line\n" * 2000}],
        "working_summary_mode": "compact", "max_total_tokens": 10, "max_tool_message_tokens": 10,
        "keep_recent_count": 0, "chat_id": "nul-id"}, "tool_call_id"),
    ("grep_working_memory", {"pattern": "x", "chat_id": "seed\x00"}, "'chat_id'"),
    ("grep_working_memory", {"pattern": "x", "file": LOG_FILE + "\x00"}, "file"),
    ("read_working_memory", {"file": "seed/\x1b[2J.txt"}, "file"),
    ("read_working_memory", {"file": "seed\n/0001-call_log.txt"}, "file"),
    ("vector_store", {"action": "dump", "path": "p\x00", "workspace_id": "fuzz"}, "'path'"),
    ("vector_store", {"action": "load", "pack": "coding-agent\n"}, "'pack'"),
]


@on(EVERY_FACE)
@pytest.mark.parametrize(("flow", "arguments", "field"), CONTROL_IN_NAMES,
                         ids=[f"{flow}:{field}:{i}" for i, (flow, _, field) in enumerate(CONTROL_IN_NAMES)])
def test_nul_and_control_characters_in_names_and_paths_are_refused(
    face: Face, flow: str, arguments: dict[str, Any], field: str
) -> None:
    refused(face, flow, arguments, field)


# -- numbers ---------------------------------------------------------------------------------------------------

ENORMOUS = [2**63, 2**100]
NEGATIVE = [-1, -(2**63)]
LONG_RUN = {"messages": [{"role": "user", "content": "x"}]}
TOOL_CALL = {"tool_call_results": [{"tool_name": "num"}]}
# (flow, careful call, field, values refused, values answered correctly)
NUMBERS = [
    ("recall", {"query": "x"}, "top_k", NEGATIVE + ENORMOUS + [0, 101], [100]),
    ("forget", {"query": "lunch", "workspace_id": "fuzz"}, "top_k", NEGATIVE + ENORMOUS + [0], [1000]),
    ("retrieve_task_memory", {"query": "x"}, "top_k", NEGATIVE + ENORMOUS, [1]),
    ("vector_store", {"action": "list", "workspace_id": "fuzz"}, "offset", NEGATIVE + ENORMOUS, [10**6]),
    ("vector_store", {"action": "list", "workspace_id": "fuzz"}, "limit", NEGATIVE + ENORMOUS + [0], [1]),
    ("read_working_memory", {"file": LOG_FILE}, "offset", NEGATIVE, ENORMOUS),
    ("read_working_memory", {"file": LOG_FILE}, "limit", NEGATIVE + ENORMOUS + [0], [5000]),
    ("grep_working_memory", {"pattern": "step", "file": LOG_FILE}, "context_lines", NEGATIVE + ENORMOUS, [50]),
    ("grep_working_memory", {"pattern": "step", "file": LOG_FILE}, "limit", NEGATIVE + ENORMOUS + [0], [1]),
    ("summary_working_memory", LONG_RUN, "keep_recent_count", NEGATIVE + ENORMOUS, [0]),
    ("summary_working_memory", LONG_RUN, "max_total_tokens", NEGATIVE, ENORMOUS),
    ("summary_working_memory", LONG_RUN, "max_tool_message_tokens", NEGATIVE + [0], ENORMOUS),
    ("summary_working_memory", LONG_RUN, "group_token_threshold", NEGATIVE + [99], ENORMOUS),
    ("summary_working_memory", LONG_RUN, "compact_ratio_threshold", NEGATIVE + ENORMOUS + [0], [1]),
    ("consolidate", {"workspace_id": "fuzz"}, "threshold", NEGATIVE + ENORMOUS + [0], [1]),
    ("summarize_trajectory", {"trajectories": [LONG_RUN]}, "score", NEGATIVE + ENORMOUS, []),
    ("remember", {"text": "numbers"}, "ttl", NEGATIVE + ENORMOUS + [0], []),
    ("add_tool_call_result", TOOL_CALL, "token_cost", NEGATIVE + ENORMOUS + [10**400], [10**6]),
    ("add_tool_call_result", TOOL_CALL, "time_cost", NEGATIVE + ENORMOUS + [10**400], [10**9]),
]
NUMBER_CASES = [
    pytest.param(flow, base, field, value, value in good, id=f"{flow}:{field}={value if value < 10**30 else 'huge'}")
    for flow, base, field, bad, good in NUMBERS for value in bad + good
]


@on(EVERY_FACE)
@pytest.mark.parametrize(("flow", "base", "field", "value", "fine"), NUMBER_CASES)
def test_negative_and_enormous_numbers_get_a_clear_error_or_a_correct_answer(
    face: Face, flow: str, base: dict[str, Any], field: str, value: int, fine: bool
) -> None:
    if flow == "add_tool_call_result":
        arguments = {"tool_call_results": [{**base["tool_call_results"][0], field: value}]}
        where = f"'tool_call_results.0.{field}'"
    else:
        arguments, where = {**base, field: value}, f"'{field}'"
    if not fine:
        refused(face, flow, arguments, where)
        return
    answer = answered(face, flow, arguments)
    if flow == "read_working_memory" and field == "offset":
        assert answer.data["content"] == "" and answer.data["total_lines"] == 300
    if flow == "summary_working_memory" and field == "max_total_tokens":
        assert answer.data["messages"] == LONG_RUN["messages"] and not answer.data["files"]


@on(["python"])
def test_an_integer_too_long_to_print_is_refused_without_printing_it(face: Face) -> None:
    """Python will not turn an integer of over 4,300 digits into text; the error must not try to (JSON
    faces cannot even carry one: the HTTP body and raw stdio tests above show their clear errors)."""
    refused(face, "recall", {"query": "x", "top_k": 10**5000}, "'top_k'", "an integer of about 5,000 digits")
    refused(face, "remember", {"text": "x", "ttl": 10**5000}, "'ttl'", "under 1000 years")


# -- regular expressions ---------------------------------------------------------------------------------------


@on(EVERY_FACE)
def test_a_regex_that_backtracks_catastrophically_stops_at_the_deadline_and_the_server_answers_on(face: Face) -> None:
    started = time.monotonic()
    slow = refused(face, "grep_working_memory", {"pattern": "(a+)+$", "regex": True, "file": AAAA_FILE},
                   f"took longer than {GREP_SECONDS:g} s", "(a+)+")
    assert time.monotonic() - started < GREP_SECONDS + 10, slow.text
    started = time.monotonic()
    found = answered(face, "grep_working_memory", {"pattern": "rollback tag", "chat_id": "seed"})
    assert [m["text"] for m in found.data["matches"]] == [ROLLBACK]
    assert time.monotonic() - started < GREP_SECONDS, "the next call waited for the runaway pattern"


# -- paths out of the store ------------------------------------------------------------------------------------

SIMPLE = {"messages": [{"role": "user", "content": "x"}]}
TRAVERSALS = [
    ("read_working_memory", {"file": "../memory.sqlite3"}),
    ("read_working_memory", {"file": "../../memory.sqlite3"}),
    ("read_working_memory", {"file": "/etc/passwd"}),
    ("read_working_memory", {"file": "..\\..\\memory.sqlite3"}),
    ("read_working_memory", {"file": "%2e%2e/%2e%2e/memory.sqlite3"}),
    ("read_working_memory", {"file": "seed/../../../memory.sqlite3"}),
    ("read_working_memory", {"file": "C:\\Windows\\win.ini"}),
    ("read_working_memory", {"file": "~/.ssh/id_rsa"}),
    ("read_working_memory", {"file": "evil-link/secret.txt"}),  # a link to a folder outside
    ("read_working_memory", {"file": "seed/9999-leak.txt"}),  # a link to a file outside
    ("read_working_memory", {"file": LOG_FILE, "workspace_id": ".."}),
    ("grep_working_memory", {"pattern": "OUTSIDE", "chat_id": "evil-link"}),
    ("grep_working_memory", {"pattern": "OUTSIDE", "chat_id": "../default"}),
    ("grep_working_memory", {"pattern": "OUTSIDE", "store_dir": "evil-link"}),
    ("grep_working_memory", {"pattern": "OUTSIDE", "store_dir": "../.."}),
    ("grep_working_memory", {"pattern": "OUTSIDE", "store_dir": "/etc"}),
    ("grep_working_memory", {"pattern": "OUTSIDE", "file": "evil-link/secret.txt"}),
    ("grep_working_memory", {"pattern": "OUTSIDE", "file": "seed/9999-leak.txt"}),
    ("summary_working_memory", {**SIMPLE, "chat_id": "evil-link"}),
    ("summary_working_memory", {**SIMPLE, "chat_id": "../escape"}),
    ("summary_working_memory", {**SIMPLE, "store_dir": "evil-link"}),
    ("summary_working_memory", {**SIMPLE, "store_dir": "../outside"}),
    ("summary_working_memory", {**SIMPLE, "store_dir": "/tmp/escape"}),
    ("summary_working_memory", {**SIMPLE, "store_dir": "..\\escape"}),
    ("summary_working_memory", {
        "messages": [{"role": "assistant", "tool_calls": [{"id": "../../escape", "function": {"name": "cat"}}]},
                     {"role": "tool", "tool_call_id": "../../escape", "content": "line\n" * 2000}],
        "working_summary_mode": "compact", "max_total_tokens": 10, "max_tool_message_tokens": 10,
        "keep_recent_count": 0, "chat_id": "escape"}),
    ("vector_store", {"action": "dump", "path": "evil-pack", "workspace_id": "fuzz"}),
    ("vector_store", {"action": "dump", "path": "../outside", "workspace_id": "fuzz"}),
    ("vector_store", {"action": "dump", "path": "/tmp/escape", "workspace_id": "fuzz"}),
    ("vector_store", {"action": "dump", "path": "..", "workspace_id": "fuzz"}),
    ("vector_store", {"action": "dump", "path": "%2e%2e", "workspace_id": "fuzz"}),
    ("vector_store", {"action": "load", "path": "evil-pack", "workspace_id": "escape"}),
    ("vector_store", {"action": "load", "pack": "evil-pack", "workspace_id": "escape"}),
    ("vector_store", {"action": "load", "pack": "../coding-agent", "workspace_id": "escape"}),
    ("remember", {"text": "x", "workspace_id": "../../etc"}),
    ("recall", {"query": "x", "workspace_id": "/etc"}),
    ("grep_working_memory", {"pattern": "x", "workspace_id": ".."}),
]


@on(EVERY_FACE)
@pytest.mark.parametrize(("flow", "arguments"), TRAVERSALS,
                         ids=[f"{flow}:{json.dumps(args)[:60]}" for flow, args in TRAVERSALS])
def test_a_path_out_of_the_store_is_refused_and_nothing_outside_is_read_or_written(
    face: Face, flow: str, arguments: dict[str, Any]
) -> None:
    refused(face, flow, arguments)


@on(EVERY_FACE)
def test_links_that_lead_out_of_the_store_are_not_followed_by_grep_or_forget(face: Face) -> None:
    word = SECRET.rsplit("-", 1)[1]  # searched for; the answers echo it, but must never hold SECRET itself
    everywhere = answered(face, "grep_working_memory", {"pattern": word})
    assert everywhere.data["matches"] == []
    in_the_chat = answered(face, "grep_working_memory", {"pattern": word, "chat_id": "seed"})
    assert in_the_chat.data["matches"] == []
    listed = answered(face, "vector_store", {"action": "list"})
    assert "evil-pack" not in [p["name"] for p in listed.data["packs"]] and "evil-pack" not in listed.text
    forget = answered(face, "forget", {"about": word})
    assert forget.data["working_files"] == [] and forget.data["memories"] == []
    assert (face.outside / "secret.txt").read_text().startswith(SECRET)


# -- known bugs in reme_mcp/working, to be fixed there ------------------------------------------------------


@on(["python"])
def test_a_refused_summary_writes_no_file(face: Face) -> None:
    long = "\n".join(f"line {i} of a long tool result" for i in range(400))
    refused(face, "summary_working_memory", {
        "messages": [{"role": "assistant", "tool_calls": [{"id": "good", "function": {"name": "cat"}},
                                                          {"id": "../bad", "function": {"name": "cat"}}]},
                     {"role": "tool", "tool_call_id": "good", "content": long},
                     {"role": "tool", "tool_call_id": "../bad", "content": long}],
        "working_summary_mode": "compact", "max_total_tokens": 10, "max_tool_message_tokens": 10,
        "keep_recent_count": 0, "chat_id": "half-written"}, "tool_call_id")


@on(["python"])
def test_a_refused_read_creates_no_folder(face: Face) -> None:
    refused(face, "read_working_memory", {"file": "seed/nothing.txt", "workspace_id": "nobody-here"},
            "No working-memory file")
    assert not (face.store_dir / DIRECTORY / "nobody-here").exists()
