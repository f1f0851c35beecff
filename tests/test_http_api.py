"""`reme backend=http`: the same flows as plain JSON over HTTP on loopback."""

from __future__ import annotations

import httpx

from trajectories import answered, long_trajectory


def test_remember_recall_forget_over_http(http_server: str) -> None:
    with httpx.Client(base_url=http_server, timeout=60) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and "recall" in health["flows"]

        stored = client.post("/remember", json={"text": "Maria's flight lands at 18:40 on Sunday.", "keywords": "Maria, flight"})
        assert stored.status_code == 200
        envelope = stored.json()
        assert envelope["success"] is True
        memory_id = envelope["metadata"]["memory"]["id"]
        assert memory_id in envelope["answer"]

        again = client.post("/remember", json={"text": "Maria's flight lands at 18:40 on Sunday.", "keywords": ["Maria", "flight"]})
        assert again.json()["metadata"] == {**envelope["metadata"], "created": False}

        found = client.post("/recall", json={"query": "when does Maria arrive?", "top_k": 3}).json()
        assert found["success"] is True
        assert found["metadata"]["memories"][0]["id"] == memory_id
        assert found["answer"].startswith(f"Best match: {memory_id}")

        assert client.post("/forget", json={"memory_id": memory_id}).json()["success"] is True
        assert client.post("/recall", json={"query": "Maria flight"}).json()["metadata"]["memories"] == []


def test_bad_requests_get_an_envelope_that_says_why(http_server: str) -> None:
    with httpx.Client(base_url=http_server, timeout=60) as client:
        cases = [
            (client.post("/recall", json={"query": "x", "top_k": 10000}), 400, "top_k"),
            (client.post("/remember", json={}), 400, "'text' is required"),
            (client.post("/remember", content=b"{not json"), 400, "not valid JSON"),
            (client.post("/remember", json=["a", "list"]), 400, "JSON object"),
            (client.post("/recall", json={"query": "x", "workspace_id": "ghost"}), 404, "does not exist"),
            (client.post("/forget", json={"memory_id": "nope"}), 404, "No memory 'nope'"),
            (client.post("/teleport", json={}), 404, "No flow named 'teleport'"),
        ]
        for response, status, expect in cases:
            body = response.json()
            assert response.status_code == status, body
            assert body["success"] is False and expect in body["answer"], body


def test_openapi_describes_every_flow_from_the_same_models(http_server: str) -> None:
    spec = httpx.get(f"{http_server}/openapi.json").json()
    recall = spec["paths"]["/recall"]["post"]
    schema = recall["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["top_k"]["maximum"] == 100
    assert {"/remember", "/recall", "/forget"} <= set(spec["paths"])


def test_working_memory_over_http(http_server: str) -> None:
    messages = long_trajectory(results=6, lines_per_result=400, planted={1: "checksum mismatch in part-00042.parquet"})
    with httpx.Client(base_url=http_server, timeout=60) as client:
        summary = client.post("/summary_working_memory", json={"messages": messages, "working_summary_mode": "compact"})
        assert summary.status_code == 200, summary.text
        meta = summary.json()["metadata"]
        assert meta["compacted"] and answered(meta["messages"])
        found = client.post("/grep_working_memory", json={"pattern": "part-00042", "chat_id": meta["chat_id"]}).json()
        assert found["metadata"]["matches"][0]["text"] == "checksum mismatch in part-00042.parquet"
        refused = client.post("/read_working_memory", json={"file": "/etc/passwd"})
        assert refused.status_code == 400 and "is absolute" in refused.json()["answer"]
        missing = client.post("/read_working_memory", json={"file": "nope/0001-x.txt"})
        assert missing.status_code == 404


def test_reme_flows_by_name_over_http(http_server: str) -> None:
    with httpx.Client(base_url=http_server, timeout=60) as client:
        added = client.post("/add_tool_call_result", json={"workspace_id": "w1", "tool_call_results": [
            {"tool_name": "grep", "input": {"pattern": "x"}, "output": "3 matches", "success": True, "time_cost": 0.2},
            {"tool_name": "grep", "input": {"pattern": "("}, "output": "bad regex", "success": False, "time_cost": 0.1},
        ]})
        assert added.status_code == 200, added.text
        looked_up = client.post("/retrieve_tool_memory", json={"workspace_id": "w1", "tool_names": "grep"}).json()
        assert looked_up["metadata"]["tools"][0]["stats"]["success_rate"] == 0.5
        no_llm = client.post("/summary_task_memory", json={"trajectories": [{"messages": [{"role": "user", "content": "hi"}]}]})
        assert no_llm.status_code == 503 and "FLOW_LLM_API_KEY" in no_llm.json()["answer"]
