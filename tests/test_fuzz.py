"""Any arguments, through every face: a call succeeds or says clearly why not, the server stays up,
and a refused call leaves the store exactly as it was.

The project's rule (reme_mcp/errors.py): a flow either answers or raises a `ReMeError`,
a message the caller can act on. Anything else is a bug, which MCP reports as "Internal
error in X" and HTTP as a 500. Hypothesis draws each flow's arguments from the flow's own
JSON schema (so a new field is fuzzed the day it is added), then breaks them: wrong
types, missing and unknown fields, None, huge and negative numbers, NaN and infinity,
deep nesting, and nasty strings (NUL, control characters, lone surrogates, bidi marks,
path traversal, regex bombs). Every example is checked for

- no internal error, on the Python face (`ReMeApp.run`), MCP over stdio, MCP over
  streamable HTTP and the HTTP API;
- a refused call changed nothing: every table and every file under the store directory
  read the same before and after it, and nothing appeared or changed outside it;
- a success can be sent back as JSON (Python face: the output encodes as UTF-8 JSON).

Each face keeps one server and one store for the whole module, seeded with memories, tool
calls, offloaded files and links planted to lead out of the store; after the fuzz each
still answers a normal remember and recall. MCP clients cannot send lone surrogates (the
SDK refuses to encode them), so those go to the Python and HTTP faces here and to the raw
MCP transports in test_bad_input.py.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from faces import (
    AAAA_FILE,
    LOG_FILE,
    SECRET,
    SEED_CHAT,
    Face,
    StoreState,
    assert_still_serves,
    seeded_face,
    short,
    tree,
    unchanged,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reme_mcp.flows import FLOWS

# -- examples per face: the module runs in about a minute and a half on two cores ----------------------------

PYTHON_EXAMPLES = {"train_memory": 30}  # training a workspace takes up to a second or two
PYTHON_DEFAULT_EXAMPLES = 150
WIRE_EXAMPLES = 400  # per network face, over all flows

FUZZ = settings(
    deadline=None, derandomize=True, database=None, print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# -- what a careful client sends --------------------------------------------------------------------------------

RUN = {"messages": [{"role": "user", "content": "Deploy the API."},
                    {"role": "assistant", "content": "Smoke tests passed on staging; traffic switched."}], "score": 1.0}
BASE: dict[str, dict[str, Any]] = {
    "remember": {"text": "The deploy freeze starts on December 20.", "keywords": ["deploy"], "tags": ["ops"],
                 "workspace_id": "fuzz", "ttl": "30d"},
    "recall": {"query": "staging password", "top_k": 3, "workspace_id": "fuzz", "tags": ["seed"], "after": "7d"},
    "forget": {"query": "noodle bar", "workspace_id": "fuzz", "top_k": 1},
    "consolidate": {"workspace_id": "fuzz", "dry_run": True},
    "train_memory": {"episodes": [{"text": "We hiked up Mount Tam on Sunday.", "keywords": ["hike"]}],
                     "workspace_id": "fuzz-cells"},
    "vector_store": {"action": "list", "workspace_id": "fuzz", "limit": 5, "offset": 0},
    "summary_working_memory": {
        "messages": [{"role": "user", "content": "Read the log."},
                     {"role": "assistant", "tool_calls": [{"id": "call_1", "function": {"name": "cat"}}]},
                     {"role": "tool", "tool_call_id": "call_1", "content": "line\n" * 300}],
        "working_summary_mode": "compact", "max_total_tokens": 50, "max_tool_message_tokens": 20,
        "keep_recent_count": 0, "chat_id": "fuzz-chat"},
    "grep_working_memory": {"pattern": "rollback", "chat_id": SEED_CHAT, "context_lines": 1, "limit": 5},
    "read_working_memory": {"file": LOG_FILE, "offset": 149, "limit": 3},
    "summarize_trajectory": {"trajectories": [RUN], "kind": "task"},
    "summary_task_memory": {"trajectories": [RUN]},
    "summary_personal_memory": {"trajectories": [RUN]},
    "retrieve_task_memory": {"query": "deploy the API", "top_k": 3},
    "retrieve_personal_memory": {"query": "favourite editor", "top_k": 3},
    "add_tool_call_result": {"tool_call_results": [{"tool_name": "grep", "input": {"pattern": "y"},
                                                    "output": "0 matches", "success": False, "time_cost": 0.1,
                                                    "token_cost": 12}]},
    "summary_tool_memory": {"tool_names": ["grep"]},
    "retrieve_tool_memory": {"tool_names": ["grep"]},
}
assert set(BASE) == set(FLOWS), "a new flow needs a careful call here"

# -- what a careless or hostile one sends -----------------------------------------------------------------------

NASTY = [
    "", " ", "\x00", "a\x00b", "\x07\x08\x1b[2J\x7f", "\r\n\t", "\u202eevil\u202c", "\u200b\ufeff", "😀", "e\u0301",
    "../x", "../../memory.sqlite3", "/etc/passwd", "..\\x", "%2e%2e/x", "C:\\Windows", "~/.ssh", "evil-link",
    "evil-link/secret.txt", "evil-pack", f"{SEED_CHAT}/9999-leak.txt", AAAA_FILE, "(a|a)+$", "[", "\\", "*",
    "' OR 1=1 --", "NEAR(a b)", "0", "-1", "1e400", "nan", "7d", "2026-13-45", "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00", "x" * 5000,
]
LONE_SURROGATES = ["\ud800", "a\udfffb", "\udc80\udc80", "\ud83d"]  # not on MCP: its clients cannot encode them
BIG_INTS = [-1, -(2**31), 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 2**70, -(2**70), 2**100, 10**400]
ZONES = [timezone.utc, timezone(timedelta(hours=14)), timezone(timedelta(hours=-14)),
         timezone(timedelta(hours=5, minutes=30))]


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


def texts(mcp: bool) -> st.SearchStrategy[str]:
    characters = st.characters() if mcp else st.characters(exclude_categories=())  # () lets surrogates in
    nasty = [st.sampled_from(NASTY)] + ([] if mcp else [st.sampled_from(LONE_SURROGATES)])
    return st.one_of(*nasty, st.text(characters, max_size=20))


def json_values(mcp: bool) -> st.SearchStrategy[Any]:
    numbers = st.integers() | st.sampled_from(BIG_INTS) | st.floats()  # NaN and infinity too
    deep = st.sampled_from([63, 64, 65, 200]).map(nested)  # 10,000 levels: test_bad_input.py (too deep to print)
    leaves = st.none() | st.booleans() | numbers | texts(mcp) | deep

    def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.lists(inner, max_size=3) | st.dictionaries(texts(mcp), inner, max_size=3)

    return st.recursive(leaves, containers, max_leaves=8)


def from_schema(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that fit a JSON schema as pydantic writes them (the subset the flows' inputs use)."""
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in schema:
        return st.one_of([from_schema(option, defs) for option in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        if "pattern" in schema:
            longest = schema.get("maxLength", 10**9)
            return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: len(s) <= longest)
        if schema.get("format") == "date-time":
            return st.datetimes(timezones=st.none() | st.sampled_from(ZONES)).map(lambda d: d.isoformat())
        shortest = schema.get("minLength", 0)
        return st.text(min_size=shortest, max_size=max(shortest, min(schema.get("maxLength", 40), 40)))
    if kind == "integer":
        low = schema.get("minimum", schema["exclusiveMinimum"] + 1 if "exclusiveMinimum" in schema else None)
        return st.integers(min_value=low, max_value=schema.get("maximum"))
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        return st.floats(min_value=low, max_value=schema.get("maximum"), exclude_min="exclusiveMinimum" in schema,
                         allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), defs), min_size=schema.get("minItems", 0),
                        max_size=max(schema.get("minItems", 0), min(schema.get("maxItems", 3), 3)))
    if kind == "object" and "properties" in schema:
        properties = {name: from_schema(sub, defs) for name, sub in schema["properties"].items()}
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries({k: v for k, v in properties.items() if k in required},
                                     optional={k: v for k, v in properties.items() if k not in required})
    return json_values(mcp=True)  # an object of anything, or no type at all (Any)


def valid_calls(flow: str) -> st.SearchStrategy[dict[str, Any]]:
    """The careful call, or any call the schema allows, each field drawn from the schema or the careful call."""
    schema = FLOWS[flow].input.model_json_schema()
    defs, base = schema.get("$defs", {}), BASE[flow]
    fields = {name: from_schema(sub, defs) for name, sub in schema["properties"].items()}
    fields = {name: (st.just(base[name]) | s) if name in base else s for name, s in fields.items()}
    required = set(schema.get("required", ()))
    drawn = st.fixed_dictionaries({k: v for k, v in fields.items() if k in required},
                                  optional={k: v for k, v in fields.items() if k not in required})
    return st.just(base) | drawn


def corrupted(value: Any, mcp: bool) -> st.SearchStrategy[Any]:
    """The same value, any of its strings and numbers (at any depth) swapped for nasty ones."""
    if isinstance(value, str):
        return st.just(value) | texts(mcp)
    if isinstance(value, bool) or value is None:
        return st.just(value) | json_values(mcp)
    if isinstance(value, (int, float)):
        return st.just(value) | st.sampled_from(BIG_INTS) | st.floats()
    if isinstance(value, list):
        return st.tuples(*(corrupted(item, mcp) for item in value)).map(list)
    if isinstance(value, dict):
        return st.fixed_dictionaries({key: corrupted(item, mcp) for key, item in value.items()})
    return st.just(value)


def calls(flow: str, mcp: bool) -> st.SearchStrategy[Any]:
    """Valid calls; valid calls with nasty strings and numbers inside, or one field replaced, dropped or added;
    arbitrary objects; and (off MCP, whose clients only send objects) arguments that are no object at all."""
    names = sorted(FLOWS[flow].input.model_json_schema()["properties"]) + ["colour", "", "__proto__"]
    value = json_values(mcp)
    valid = valid_calls(flow)
    spoiled = valid.flatmap(lambda args: corrupted(args, mcp))
    replaced = st.tuples(valid, st.sampled_from(names), value).map(lambda t: {**t[0], t[1]: t[2]})
    dropped = valid.flatmap(lambda args: st.sampled_from(sorted(args) or [""]).map(
        lambda gone: {k: v for k, v in args.items() if k != gone}))
    anything = st.dictionaries(st.sampled_from(names) | texts(mcp), value, max_size=4)
    options = [valid, spoiled, spoiled, replaced, replaced, dropped, anything] + ([] if mcp else [value])
    return st.one_of(options)


def any_call(mcp: bool) -> st.SearchStrategy[tuple[str, Any]]:
    return st.sampled_from(sorted(FLOWS)).flatmap(lambda flow: st.tuples(st.just(flow), calls(flow, mcp)))


# -- the property ------------------------------------------------------------------------------------------------


def assert_survives(face: Face, flow: str, arguments: Any) -> None:
    """An answer or a clear error; after an error the store is as it was; nothing outside it is touched."""
    before, outside = StoreState.read(face.store_dir), tree(face.outside)
    answer = face.call(flow, arguments)
    call = f"{face.name} {flow}({short(arguments)})"
    event(f"{face.name} {flow}: {'answered' if answer.ok else 'refused'}")  # --hypothesis-show-statistics
    assert not answer.internal, f"{call} -> {answer.text}"
    assert SECRET not in answer.text and SECRET not in str(answer.data), f"{call} read outside the store"
    if not answer.ok:
        assert answer.text.strip(), f"{call} -> an error that says nothing"
        assert answer.status is None or 400 <= answer.status < 600, f"{call} -> HTTP {answer.status} for an error"
        after = StoreState.read(face.store_dir)
        assert unchanged(before, after), f"{call} was refused ({answer.text}) but changed the store"
    assert tree(face.outside) == outside, f"{call} wrote outside the store"


# -- the faces, one server each for the whole module -----------------------------------------------------------


@pytest.fixture(scope="module")
def portal():
    with start_blocking_portal() as portal:
        yield portal


@pytest.fixture(scope="module")
def python(portal, tmp_path_factory):
    with seeded_face("python", portal, tmp_path_factory.mktemp("python")) as face:
        yield face


@pytest.fixture(scope="module")
def mcp_stdio(portal, tmp_path_factory):
    with seeded_face("mcp-stdio", portal, tmp_path_factory.mktemp("mcp-stdio")) as face:
        yield face


@pytest.fixture(scope="module")
def mcp_http(portal, tmp_path_factory):
    with seeded_face("mcp-http", portal, tmp_path_factory.mktemp("mcp-http")) as face:
        yield face


@pytest.fixture(scope="module")
def http(portal, tmp_path_factory):
    with seeded_face("http", portal, tmp_path_factory.mktemp("http")) as face:
        yield face


# -- the fuzz ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_python_face_answers_any_arguments_or_says_why_not(python: Face, flow: str) -> None:
    @settings(FUZZ, max_examples=PYTHON_EXAMPLES.get(flow, PYTHON_DEFAULT_EXAMPLES))
    @given(arguments=calls(flow, mcp=False))
    def survives(arguments: Any) -> None:
        assert_survives(python, flow, arguments)

    survives()
    assert_still_serves(python, f"{flow} fuzz")


@pytest.mark.parametrize("face", ["mcp_stdio", "mcp_http", "http"])
def test_every_network_face_answers_any_arguments_or_says_why_not(request: pytest.FixtureRequest, face: str) -> None:
    served: Face = request.getfixturevalue(face)

    @settings(FUZZ, max_examples=WIRE_EXAMPLES)
    @given(call=any_call(mcp=face.startswith("mcp")))
    def survives(call: tuple[str, Any]) -> None:
        assert_survives(served, *call)

    survives()
    assert_still_serves(served, "fuzz")
