"""The sidecar: JSON-RPC 2.0 over HTTP on uvicorn; errors get their codes and it keeps serving."""

from __future__ import annotations

import http.client
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uvicorn")

from swarm_planner.core import history
from swarm_planner.core.config import parse_config
from swarm_planner.kernel_integration.service import PlannerService
from swarm_planner.kernel_integration.sidecar import Sidecar, bind

FIXTURES = Path(__file__).parent / "fixtures"
BUNDLE = FIXTURES / "tiny-bundle"
INPUT = json.loads((FIXTURES / "tiny_planner_input.json").read_text())


class Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def post(self, body: bytes) -> tuple[int, Any]:
        self.connection.request("POST", "/", body, {"content-type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None

    def call(self, method: str, params: Any = None, request_id: Any = 1) -> Any:
        request = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            request["params"] = params
        return self.post(json.dumps(request).encode())[1]


@pytest.fixture()
def sidecar(tmp_path: Path) -> Iterator[tuple[Client, PlannerService, Path]]:
    copy = tmp_path / "bundle"
    shutil.copytree(BUNDLE, copy)
    config = parse_config(
        {
            "mode": "enforce",
            "model": {"type": "onnx", "path": str(copy)},
            "inference": {"confidence_threshold": 0.0},
            "safety": {"reductions_only": False},
        }
    )
    service = PlannerService(config)
    server = Sidecar(service, bind("127.0.0.1", 0), max_body_bytes=64 * 1024)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield Client(server.address[1]), service, copy
    server.stop()
    thread.join(timeout=10)


def test_plan_answers_a_decision(sidecar: tuple[Client, PlannerService, Path]) -> None:
    client, _, _ = sidecar
    answer = client.call("plan", {"planner_input": INPUT, "baseline": "serial_handoff|1|60|NA"})
    result = answer["result"]
    assert answer["id"] == 1 and result["reason"] == "model"
    assert result["planner_action"]["schema_version"] == "cyntra.planner_action.v1"
    assert result["executed_plan"]["schema_version"] == "cyntra.executed_plan.v1"
    assert result["model"].startswith("mlp@bundle:")


def test_errors_have_their_codes_and_the_server_keeps_serving(
    sidecar: tuple[Client, PlannerService, Path],
) -> None:
    client, _, _ = sidecar
    assert client.post(b"{not json")[1]["error"]["code"] == -32700
    assert client.post(b'{"id": 1, "method": "plan"}')[1]["error"]["code"] == -32600
    assert client.post(b"[]")[1]["error"]["code"] == -32600
    assert client.call("nosuch")["error"]["code"] == -32601
    assert client.call("plan", [1, 2])["error"]["code"] == -32602
    assert client.call("plan", {"planner_input": 5})["error"]["code"] == -32602
    assert client.call("plan", {"planner_input": INPUT, "baseline": "x|y"})["error"]["code"] == (
        -32602
    )
    assert client.call("plan", {"planner_input": INPUT, "extra": 1})["error"]["code"] == -32602
    status, body = client.post(b"[" + b"1," * 40_000 + b"1]")
    assert status == 413 and body["error"]["code"] == -32600
    client = Client(client.port)  # the server may close a refused connection
    assert client.call("health")["result"]["status"] == "ok"


def test_a_contract_breaking_input_is_a_recorded_fallback(
    sidecar: tuple[Client, PlannerService, Path],
) -> None:
    client, service, _ = sidecar
    bad = dict(INPUT, job_type=7)
    result = client.call("plan", {"planner_input": bad, "baseline": "serial_handoff|1|60|NA"})
    assert result["result"]["reason"] == "invalid_input"
    assert result["result"]["executed_action"] == "serial_handoff|1|60|NA"
    assert service.counts["invalid_input"] == 1


def test_a_batch_and_a_notification(sidecar: tuple[Client, PlannerService, Path]) -> None:
    client, _, _ = sidecar
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "health"},
        {"jsonrpc": "2.0", "method": "health"},
        {"jsonrpc": "2.0", "id": "b", "method": "nosuch"},
    ]
    status, answers = client.post(json.dumps(batch).encode())
    assert status == 200 and [a["id"] for a in answers] == ["a", "b"]
    assert "error" in answers[1]


def test_info_names_the_bundle_and_reload_switches_or_keeps_it(
    sidecar: tuple[Client, PlannerService, Path], tmp_path: Path
) -> None:
    client, _service, copy = sidecar
    info = client.call("info")["result"]
    assert info["bundle"] == str(copy) and info["bundle_id"]
    assert "policy:onnx" in info["plugins"]
    # which ranking serves retrieval: CI builds the extension, so it must say "compiled" there
    assert info["retrieval"] == ("compiled" if history._top_compiled else "numpy")
    failed = client.call("reload", {"path": str(tmp_path / "nowhere")})
    assert failed["error"]["code"] == -32603 and failed["error"]["data"] == {"kept": True}
    assert client.call("info")["result"]["bundle"] == str(copy)
    second = tmp_path / "second"
    shutil.copytree(BUNDLE, second)
    switched = client.call("reload", {"path": str(second)})["result"]
    assert switched["bundle"] == str(second)
    answer = client.call("plan", {"planner_input": INPUT})["result"]
    assert answer["model"].startswith("mlp@second:")


def test_plan_issue_and_add_run_use_the_live_history(
    sidecar: tuple[Client, PlannerService, Path],
) -> None:
    client, _service, _ = sidecar
    run = INPUT["history"]["last_n_similar_runs"][0]
    added = client.call("add_run", {"run": run})
    assert "result" in added, added
    added = added["result"]
    assert added == {"history_runs": 1}
    answer = client.call(
        "plan_issue",
        {
            "issue": {"issue_id": "NEW-1", "tags": run.get("tags") or []},
            "job_type": run["job_type"],
            "now_ms": run["started_ms"] + 1,
        },
    )["result"]
    assert answer["branch"] in ("model", "fallback")
    assert client.call("add_run", {"run": {"run_id": 1}})["error"]["code"] == -32602
    assert client.call("plan_issue", {"issue": {}, "job_type": "code"})["error"]["code"] == -32602


def test_serve_refuses_a_non_loopback_address_without_the_flag() -> None:
    from typer.testing import CliRunner

    from swarm_planner.cli.app import app

    result = CliRunner().invoke(
        app, ["serve", "--config", str(FIXTURES / "nowhere.yaml"), "--host", "0.0.0.0"]
    )
    assert result.exit_code == 2
    assert "--allow-remote" in result.output


def test_several_workers_share_added_runs_and_reloads(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    config = tmp_path / "kernel.yaml"
    config.write_text(
        f"planner: {{mode: enforce, model: {{type: onnx, path: {BUNDLE}}}, "
        "inference: {confidence_threshold: 0}}\n"
    )
    code = "from swarm_planner.cli.app import main; main()"
    args = ["serve", "--config", str(config), "--port", "0", "--workers", "2"]
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args], stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        listening = json.loads(process.stderr.readline())
        port = int(listening["listening"].rsplit(":", 1)[1].strip("/"))
        run = INPUT["history"]["last_n_similar_runs"][0]
        deadline = time.monotonic() + 30
        added = None
        while added is None and time.monotonic() < deadline:
            try:
                added = Client(port).call("add_run", {"run": run})
            except OSError:
                time.sleep(0.2)  # the workers are still loading
        assert added is not None and added["result"] == {"history_runs": 1}
        second = tmp_path / "second"
        shutil.copytree(BUNDLE, second)
        assert Client(port).call("reload", {"path": str(second)})["result"]["bundle"] == str(second)
        seen: dict[int, tuple[int, str]] = {}
        expected = (1, str(second))
        while time.monotonic() < deadline and not (
            len(seen) == 2 and set(seen.values()) == {expected}
        ):  # relayed within milliseconds; the latest answer of each worker counts
            info = Client(port).call("info")["result"]  # a new connection: any worker
            seen[info["pid"]] = (info["history_runs"], info["bundle"])
            time.sleep(0.05)
        assert len(seen) == 2, "both workers answered"
        assert set(seen.values()) == {expected}
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def test_notifications_are_never_answered_and_ids_and_params_are_checked(
    sidecar: tuple[Client, PlannerService, Path],
) -> None:
    client, _, _ = sidecar
    assert client.post(b'{"jsonrpc": "2.0", "method": "nosuch"}') == (204, None)
    assert client.post(b'[{"jsonrpc": "2.0", "method": "health"}]') == (200, None)
    odd_id = client.post(b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "health"}')[1]
    assert odd_id["error"]["code"] == -32600
    text_params = client.post(b'{"jsonrpc": "2.0", "id": 1, "method": "health", "params": "x"}')
    assert text_params[1]["error"]["code"] == -32600


def test_a_baseline_out_of_bounds_is_invalid_params_and_one_outside_the_space_is_replaced(
    sidecar: tuple[Client, PlannerService, Path],
) -> None:
    client, _, _ = sidecar
    huge = "speculate_vote|99999999999999999999999|60|NA"
    assert client.call("plan", {"planner_input": INPUT, "baseline": huge})["error"]["code"] == (
        -32602
    )
    answer = client.call("plan", {"planner_input": INPUT, "baseline": "bogus|1|60|NA"})["result"]
    assert not answer["executed_action"].startswith("bogus")
    assert "not an action of this space" in (answer["detail"] or "")
    batch = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "plan",
            "params": {"planner_input": INPUT, "baseline": huge},
        },
        {"jsonrpc": "2.0", "id": 2, "method": "health"},
    ]
    status, answers = client.post(json.dumps(batch).encode())
    assert status == 200 and [a["id"] for a in answers] == [1, 2]
    assert "result" in answers[1]
