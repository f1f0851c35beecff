"""Realistic long agent runs for working-memory tests and bench/working_memory.py.

An agent investigates a failed nightly job: it searches the web, fetches pages, reads
log files and runs shell commands, sometimes two tools in one turn. Tool results are
the bulk, as in real runs. Everything is generated from a seed, so runs repeat exactly.
`planted` lines are hidden in the middle of chosen tool results for grep to find.
"""

from __future__ import annotations

import json
import random
from typing import Any

WORDS = (
    "pipeline warehouse partition retry backoff replica schema migration checkpoint snapshot latency throughput "
    "connection pool timeout deadlock index vacuum shard cluster node scheduler worker queue broker consumer "
    "offset commit rollback transaction isolation lock contention memory pressure heap garbage collector "
    "kernel socket buffer cache eviction invalidation upstream downstream dependency artifact release version "
    "deploy canary rollout feature flag config secret rotation certificate expiry handshake protocol payload "
    "parser encoder compression checksum integrity manifest bucket object storage region zone failover quorum"
).split()
LEVELS = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def _search_results(rng: random.Random, query: str, lines: int) -> str:
    out = [f'Search results for "{query}"']
    for rank in range(1, lines // 4 + 2):
        slug = "-".join(rng.sample(WORDS, 3))
        out += [f"{rank}. {_sentence(rng, 6)[:-1]}", f"   https://docs.example.com/{slug}", f"   {_sentence(rng, 24)}", ""]
    return "\n".join(out[:lines])


def _page(rng: random.Random, url: str, lines: int) -> str:
    out = [f"# {url}", ""]
    while len(out) < lines:
        out.append(" ".join(_sentence(rng, rng.randint(8, 20)) for _ in range(3)))
        out.append("")
    return "\n".join(out[:lines])


def _log(rng: random.Random, path: str, lines: int) -> str:
    out = []
    for second in range(lines):
        stamp = f"2026-11-20T02:{(second // 60) % 60:02d}:{second % 60:02d}.{rng.randint(0, 999):03d}Z"
        worker = f"worker-{rng.randint(1, 16):02d}"
        out.append(f"{stamp} {rng.choice(LEVELS):5} [{worker}] {_sentence(rng, rng.randint(6, 14))}")
    return "\n".join(out)


def _shell(rng: random.Random, command: str, lines: int) -> str:
    out = [f"$ {command}"]
    for _ in range(lines - 1):
        out.append(f"{rng.randint(1000, 99999):>6}  {rng.choice(WORDS):<14} {rng.choice(WORDS)}/{rng.choice(WORDS)}")
    return "\n".join(out)


TOOLS = {
    "web_search": (lambda rng, i: {"query": f"{rng.choice(WORDS)} {rng.choice(WORDS)} error nightly job"}, _search_results),
    "fetch_url": (lambda rng, i: {"url": f"https://docs.example.com/guide/{i}"}, _page),
    "read_file": (lambda rng, i: {"path": f"logs/etl-{i:03d}.log"}, _log),
    "run_shell": (lambda rng, i: {"command": f"du -a /var/lib/etl/run-{i} | sort -n"}, _shell),
}


def long_trajectory(results: int, lines_per_result: int, planted: dict[int, str] | None = None, seed: int = 7) -> list[dict[str, Any]]:
    """An agent run with `results` tool results of about `lines_per_result` lines each.

    `planted[i]` is a line inserted in the middle of tool result i.
    """
    rng = random.Random(seed)
    planted = planted or {}
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are an SRE agent. Use the tools to investigate and fix incidents."},
        {"role": "user", "content": "The nightly ETL job failed on 2026-11-20. Find out why and propose a fix."},
    ]
    index = 0
    while index < results:
        width = 2 if rng.random() < 0.25 and index + 1 < results else 1  # sometimes two tools in one turn
        calls, outputs = [], []
        for _ in range(width):
            name = rng.choice(list(TOOLS))
            make_args, make_output = TOOLS[name]
            args = make_args(rng, index)
            text = make_output(rng, next(iter(args.values())), lines_per_result)
            if index in planted:
                lines = text.split("\n")
                lines.insert(len(lines) // 2, planted[index])
                text = "\n".join(lines)
            call_id = f"call_{index:04d}_{rng.randrange(16**8):08x}"
            calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}})
            outputs.append({"role": "tool", "tool_call_id": call_id, "content": text})
            index += 1
        messages.append({"role": "assistant", "content": f"Step {index}: {_sentence(rng, 12)}", "tool_calls": calls})
        messages += outputs
    messages.append({"role": "assistant", "content": "I have enough to write the fix. " + _sentence(rng, 20)})
    messages.append({"role": "user", "content": "Go ahead, and tell me which config value you change."})
    return messages


def answered(messages: list[dict[str, Any]]) -> bool:
    """True when the list is valid for an OpenAI chat request: every tool call answered right after it, no stray results."""
    pending: set[str] = set()
    for message in messages:
        if message["role"] == "tool":
            if message.get("tool_call_id") not in pending:
                return False
            pending.discard(message["tool_call_id"])
            continue
        if pending:
            return False
        if message["role"] == "assistant":
            pending = {call["id"] for call in message.get("tool_calls") or []}
    return not pending
