"""Private data stays private: secrets redacted before storage everywhere, redacted export, encryption at rest."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import REME, mcp_stdio, server_env, store_contents
from trajectories import long_trajectory

from reme_mcp import ReMeApp
from reme_mcp.errors import StoreMismatch

pytestmark = pytest.mark.anyio

# Fake, but shaped like the real thing (split so secret scanners leave this file alone).
OPENAI = "sk-proj-" + "Xq4mT9vR2pL8sK3nW6yB1cD5fG7hJ0aZ_eU-iO"
AWS = "AKIA" + "QWERTYUIOP123456"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1x2y3z\n-----END RSA PRIVATE KEY-----"
SECRETS = (OPENAI, AWS, GITHUB, "MIIEowIBAAKCAQEA1x2y3z")


def store_bytes(store: Path) -> bytes:
    return store_contents(store)


def reme(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REME, *args], capture_output=True, text=True, env=env or server_env(), timeout=600)


async def test_secrets_are_redacted_before_anything_is_stored(tmp_path: Path) -> None:
    text = f"Deploy creds: OPENAI_API_KEY={OPENAI}, aws {AWS}. Commit a1b2c3d4e5f6 is fine, id 3f2a9c0d1e4b5a6f too."
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        stored = await app.async_execute("remember", text=text, metadata={"token": GITHUB, "pem": PEM})
        assert stored.metadata["redacted"] == 4 and "4 secret(s) were redacted" in stored.answer
        kept = stored.metadata["memory"]
        assert "[REDACTED:openai_key]" in kept["text"] and "[REDACTED:aws_access_key_id]" in kept["text"]
        assert "a1b2c3d4e5f6" in kept["text"] and "3f2a9c0d1e4b5a6f" in kept["text"]  # ordinary hex ids stay
        assert kept["metadata"]["token"] == "[REDACTED:github_token]"
        again = await app.async_execute("remember", text=text)
        assert again.metadata["memory"]["id"] == kept["id"] and not again.metadata["created"]

        trained = await app.async_execute("train_memory", workspace_id="ops", episodes=[
            {"text": f"The CI token is {GITHUB}.", "keywords": ["ci"]}, {"text": "CI runs on every push."}])
        assert trained.metadata["redacted"] == 1 and "1 secret(s) redacted" in trained.answer

        compacted = await app.async_execute("summary_working_memory", working_summary_mode="compact",
                                            keep_recent_count=1, messages=long_trajectory(
                                                results=2, lines_per_result=300, planted={0: f"export KEY={AWS}"}))
        [offloaded] = [f for f in compacted.metadata["files"] if f["tool_call_id"]][:1]
        assert "[REDACTED:aws_access_key_id]" in (tmp_path / "working" / "default" / offloaded["file"]).read_text()
        assert any("redacted" in note for note in compacted.metadata["notes"])

        await app.async_execute("add_tool_call_result", tool_call_results=[
            {"tool_name": "http", "input": {"headers": f"Authorization: Bearer {OPENAI}"}, "output": "200"}])
        services = await app.services()
        assert OPENAI not in json.dumps(services.store.tool_call_records("default"))
    raw = store_bytes(tmp_path)
    assert not any(secret.encode() in raw for secret in SECRETS)
    assert not any(AWS in p.read_text() for p in (tmp_path / "working" / "default").rglob("*.txt"))


async def test_redaction_can_be_switched_off_and_extended(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path), privacy__redact_secrets=False) as app:
        kept = await app.async_execute("remember", text=f"key {OPENAI}")
        assert kept.metadata["redacted"] == 0 and OPENAI in kept.metadata["memory"]["text"]
    async with ReMeApp(store_dir=str(tmp_path), privacy__redact_patterns=[r"EMP-\d{6}"]) as app:
        custom = await app.async_execute("remember", text="Badge EMP-123456 opens the lab.")
        assert custom.metadata["memory"]["text"] == "Badge [REDACTED:custom] opens the lab."


def test_export_can_redact_what_storing_did_not(tmp_path: Path) -> None:
    assert reme("remember", f"the deploy key is {GITHUB}", f"store_dir={tmp_path}",
                "privacy.redact_secrets=false").returncode == 0
    out = tmp_path / "export.jsonl"
    plain = reme("export", "default", str(out), f"store_dir={tmp_path}")
    assert plain.returncode == 0 and GITHUB in out.read_text()
    redacted = reme("export", "default", str(out), "--redact", f"store_dir={tmp_path}")
    assert redacted.returncode == 0, redacted.stderr
    assert "1 secret(s) redacted" in redacted.stdout
    assert GITHUB not in out.read_text() and "[REDACTED:github_token]" in out.read_text()


@pytest.mark.embedded_only  # SQLCipher; a PostgreSQL store refuses the key (tests/test_pgvector.py)
async def test_an_encrypted_store_reveals_nothing_and_needs_its_key(tmp_path: Path) -> None:
    secret_text = "Ingrid's surprise party is at the Blue Heron on 14 March."
    async with ReMeApp(store_dir=str(tmp_path), privacy__encryption_key="correct horse battery staple") as app:
        await app.async_execute("remember", text=secret_text, keywords="ingrid, party", tags="family")
        found = await app.async_execute("recall", query="Heron party", top_k=1)  # BM25 over an encrypted index
        assert found.metadata["memories"][0]["text"] == secret_text
        raw = store_bytes(tmp_path)
        assert raw and not any(word in raw for word in (b"Ingrid", b"Heron", b"party", b"family", b"SQLite format"))
    with pytest.raises(StoreMismatch, match="encrypted"):
        async with ReMeApp(store_dir=str(tmp_path)) as app:
            await app.async_execute("recall", query="party")
    with pytest.raises(StoreMismatch, match="does not open with the configured encryption key"):
        async with ReMeApp(store_dir=str(tmp_path), privacy__encryption_key="wrong") as app:
            await app.async_execute("recall", query="party")
    async with ReMeApp(store_dir=str(tmp_path), privacy__encryption_key="correct horse battery staple") as app:
        found = await app.async_execute("recall", query="who is the party for", top_k=1, tags="family")
        assert found.metadata["memories"][0]["text"] == secret_text


@pytest.mark.embedded_only
async def test_a_plain_store_is_encrypted_in_place_and_served_over_mcp(tmp_path: Path) -> None:
    key = "0123456789abcdef" * 4  # 64 hex digits: a raw 256-bit key
    assert reme("remember", "Nightly backups go to the Reykjavik bucket.", f"store_dir={tmp_path}").returncode == 0
    assert b"Reykjavik" in store_bytes(tmp_path)
    no_key = reme("encrypt", f"store_dir={tmp_path}")
    assert no_key.returncode == 2 and "REME_ENCRYPTION_KEY" in no_key.stderr
    done = reme("encrypt", f"store_dir={tmp_path}", env={**server_env(), "REME_ENCRYPTION_KEY": key})
    assert done.returncode == 0, done.stderr
    assert "1 memories" in done.stdout and b"Reykjavik" not in store_bytes(tmp_path)
    async with mcp_stdio(tmp_path, f"privacy.encryption_key={key}") as session:
        found = await session.call_tool("recall", {"query": "where do backups go"})
        assert not found.is_error and "Reykjavik" in found.content[0].text
        await session.call_tool("remember", {"text": "Backups are kept for 35 days in Reykjavik."})
    assert b"Reykjavik" not in store_bytes(tmp_path)
