"""The sidecar: the decision service over JSON-RPC 2.0 on HTTP, for kernels in other languages.

An ASGI application (:func:`make_app`) served by uvicorn (the ``serve`` extra). One endpoint,
``POST /`` (any path), takes a JSON-RPC request or a batch:

- ``plan`` ``{planner_input, baseline?}`` → the decision (``Decision.to_json``);
- ``plan_issue`` ``{issue, job_type, baseline?, system_state?, now_ms?}`` → the decision for a
  bare issue, its similar runs taken from the sidecar's live history;
- ``add_run`` ``{run, issue?}`` → indexes a finished run for the next decisions;
- ``health`` → load state and decision counts by reason;
- ``info`` → versions, bundle id, checkpoint, plugins;
- ``reload`` ``{path?}`` → loads the bundle (in a worker thread; decisions keep being served
  by the old model until the new one has loaded, and a bundle that fails to load leaves the
  old one in place).

Malformed JSON is ``-32700``, a request that is not JSON-RPC ``-32600``, an unknown method
``-32601``, bad params ``-32602``; a body over the limit is refused with HTTP 413 before it is
read to the end. A planner_input that breaks the contract is not an error: the decision is the
recorded ``invalid_input`` fallback, as in process.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from swarm_planner.core.action_space import JointAction
from swarm_planner.core.contracts import Issue, RunSummary, SystemState, load, load_input
from swarm_planner.core.errors import PlannerError
from swarm_planner.kernel_integration.service import PlannerService

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_BODY_BYTES = 1 << 20
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = (
    -32700,
    -32600,
    -32601,
    -32602,
    -32603,
)


METHODS = ("plan", "plan_issue", "add_run", "health", "info", "reload")

try:  # the serve extra brings orjson: JSON in and out several times faster
    import orjson

    def _loads(body: bytes) -> Any:
        return orjson.loads(body)

    def _dumps(payload: Any) -> bytes:
        return orjson.dumps(payload)

except ImportError:  # pragma: no cover - without the extra, the standard library

    def _loads(body: bytes) -> Any:
        return json.loads(body)

    def _dumps(payload: Any) -> bytes:
        return json.dumps(payload, allow_nan=False).encode()


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


def _error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": request_id}


_MAX_BIN = 1_000_000
_YEAR_10000_MS = 253_402_300_800_000


def _baseline(value: Any) -> JointAction | None:
    """``params.baseline`` as ``"SWARM|C|M|I"`` or ``[swarm, c, m, i]`` (bins whole numbers from
    1 to a million, or NA); anything else is an invalid-params error."""
    if value is None:
        return None
    try:
        if isinstance(value, str):
            parts = value.split("|")
            if len(parts) != 4:
                raise ValueError("expected SWARM|CANDIDATES|MINUTES|ITERATIONS")
            bins = [
                p if p == "NA" else int(p) if p.isascii() and p.isdigit() else p for p in parts[1:]
            ]
            value = [parts[0], *bins]
        action = JointAction.from_list(value)
    except (ValueError, TypeError) as exc:
        raise RpcError(INVALID_PARAMS, f"params.baseline: {exc}") from None
    for b in (action.max_candidates_bin, action.max_minutes_bin, action.max_iterations_bin):
        if b != "NA" and not (type(b) is int and 1 <= b <= _MAX_BIN):
            raise RpcError(
                INVALID_PARAMS, f"params.baseline: {b!r:.40} is not NA or a whole number 1..1000000"
            )
    if len(action.swarm_id) > 200:
        raise RpcError(INVALID_PARAMS, "params.baseline: the swarm id is over 200 characters")
    return action


class Methods:
    """The JSON-RPC methods over one service. ``publish`` (set with several workers) tells the
    other workers about a run added or a bundle reloaded here, so every worker's history and
    model stay the same."""

    def __init__(
        self, service: PlannerService, publish: Callable[[tuple[Any, ...]], None] | None = None
    ) -> None:
        self.service = service
        self.publish = publish

    def plan(self, params: Any) -> Any:
        if not isinstance(params, dict):
            raise RpcError(INVALID_PARAMS, "params: expected an object {planner_input, baseline?}")
        unknown = sorted(set(params) - {"planner_input", "baseline"})
        if unknown:
            raise RpcError(INVALID_PARAMS, f"params: unknown key {unknown[0]!r}")
        raw = params.get("planner_input")
        if not isinstance(raw, dict):
            raise RpcError(INVALID_PARAMS, "params.planner_input: expected an object")
        baseline = _baseline(params.get("baseline"))
        try:
            planner_input: Any = load_input(raw, source="params.planner_input")
        except PlannerError:
            planner_input = raw  # the service records the invalid_input fallback
        return self.service.decide(planner_input, baseline).to_json()

    def plan_issue(self, params: Any) -> Any:
        """A decision from a bare issue: the sidecar's live history supplies the similar runs."""
        if not isinstance(params, dict):
            raise RpcError(INVALID_PARAMS, "params: expected an object {issue, job_type, ...}")
        unknown = sorted(set(params) - {"issue", "job_type", "baseline", "system_state", "now_ms"})
        if unknown:
            raise RpcError(INVALID_PARAMS, f"params: unknown key {unknown[0]!r}")
        job_type, now_ms = params.get("job_type"), params.get("now_ms")
        if not isinstance(job_type, str):
            raise RpcError(INVALID_PARAMS, "params.job_type: expected a string")
        if now_ms is not None and (type(now_ms) is not int or not 0 <= now_ms < _YEAR_10000_MS):
            raise RpcError(
                INVALID_PARAMS, "params.now_ms: expected epoch milliseconds before 10000"
            )
        try:
            issue = load(params.get("issue"), Issue, source="params.issue")
            state = params.get("system_state")
            system_state = None if state is None else load(state, SystemState)
        except PlannerError as exc:
            raise RpcError(INVALID_PARAMS, str(exc)[:1000]) from None
        decision = self.service.decide_issue(
            issue,
            job_type=job_type,
            baseline=_baseline(params.get("baseline")),
            system_state=system_state,
            now_ms=now_ms,
        )
        return decision.to_json()

    def add_run(self, params: Any) -> Any:
        """A run that just finished (``{run: run_summary.v1, issue?}``), for the live history."""
        if not isinstance(params, dict) or "run" not in params:
            raise RpcError(INVALID_PARAMS, "params: expected an object {run, issue?}")
        try:
            run = load(params["run"], RunSummary, source="params.run")
            raw_issue = params.get("issue")
            issue = None if raw_issue is None else load(raw_issue, Issue, source="params.issue")
        except PlannerError as exc:
            raise RpcError(INVALID_PARAMS, str(exc)[:1000]) from None
        self.service.add_run(run, issue)
        if self.publish is not None:
            self.publish(("add_run", params["run"], params.get("issue")))
        return {"history_runs": len(self.service.history)}

    def health(self, params: Any) -> Any:
        return self.service.health()

    def info(self, params: Any) -> Any:
        return self.service.info()

    async def reload(self, params: Any) -> Any:
        if params is not None and not isinstance(params, dict):
            raise RpcError(INVALID_PARAMS, "params: expected an object {path?}")
        path = (params or {}).get("path")
        if path is not None and not isinstance(path, str):
            raise RpcError(INVALID_PARAMS, "params.path: expected a string")
        try:
            await asyncio.to_thread(self.service.reload, path)
        except Exception as exc:
            raise RpcError(INTERNAL_ERROR, f"reload failed: {exc}", {"kept": True}) from None
        if self.publish is not None:
            self.publish(("reload", path))
        return self.service.info()

    def apply(self, message: tuple[Any, ...]) -> None:
        """A change another worker published (its relay thread calls this)."""
        if message[0] == "add_run":
            run = load(message[1], RunSummary, source="params.run")
            issue = None if message[2] is None else load(message[2], Issue, source="params.issue")
            self.service.add_run(run, issue)
        elif message[0] == "reload":
            self.service.reload(message[1])


def _valid_id(value: Any) -> bool:
    return value is None or type(value) in (str, int, float)


async def _call(methods: Methods, request: Any) -> dict[str, Any] | None:
    """One request's answer; None for a notification (a request without an id), which is
    never answered, not even with an error."""
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0":
        return _error(None, INVALID_REQUEST, "not a JSON-RPC 2.0 request")
    notification = "id" not in request
    request_id = request.get("id")
    if not _valid_id(request_id):
        return _error(None, INVALID_REQUEST, "id: expected a string, a number or null")
    method = request.get("method")
    if not isinstance(method, str):
        return _error(request_id, INVALID_REQUEST, "method: expected a string")
    params = request.get("params")
    if params is not None and not isinstance(params, (dict, list)):
        return _error(request_id, INVALID_REQUEST, "params: expected an object or an array")
    handler = getattr(methods, method, None) if method in METHODS else None
    if handler is None:
        answer = _error(request_id, METHOD_NOT_FOUND, f"no method {method[:80]!r}")
    else:
        try:
            result = handler(params)
            if asyncio.iscoroutine(result):
                result = await result
            answer = {"jsonrpc": "2.0", "result": result, "id": request_id}
        except RpcError as exc:
            answer = _error(request_id, exc.code, exc.message, exc.data)
        except Exception as exc:  # the server keeps serving
            answer = _error(request_id, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:500])
    return None if notification else answer


def _encoded(answer: dict[str, Any]) -> bytes:
    """One answer as JSON; one that cannot be encoded becomes an internal error of its own
    (a batch keeps its other answers)."""
    try:
        return _dumps(answer)
    except (TypeError, ValueError, OverflowError) as exc:
        return _dumps(
            _error(answer.get("id"), INTERNAL_ERROR, f"the answer is not JSON: {exc}"[:300])
        )


def make_app(
    service: PlannerService | Methods, *, max_body_bytes: int = MAX_BODY_BYTES
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI application serving ``service`` (or prepared methods)."""
    methods = service if isinstance(service, Methods) else Methods(service)

    async def respond(send: Send, status: int, payload: Any) -> None:
        if payload is None:
            body = b""
        elif isinstance(payload, list):
            body = b"[" + b",".join(_encoded(a) for a in payload) + b"]"
        else:
            body = _encoded(payload)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await respond(send, 405, _error(None, INVALID_REQUEST, "POST a JSON-RPC request"))
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            await respond(send, 413, _error(None, INVALID_REQUEST, "request body too large"))
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_body_bytes:
                await respond(send, 413, _error(None, INVALID_REQUEST, "request body too large"))
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        try:
            request = _loads(b"".join(chunks))
        except (ValueError, RecursionError):
            await respond(send, 200, _error(None, PARSE_ERROR, "parse error: not JSON"))
            return
        if isinstance(request, list):
            if not request:
                await respond(send, 200, _error(None, INVALID_REQUEST, "an empty batch"))
                return
            answers = [a for a in [await _call(methods, r) for r in request] if a is not None]
            await respond(send, 200, answers or None)
            return
        answer = await _call(methods, request)
        await respond(send, 200 if answer is not None else 204, answer)

    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port, see ``getsockname()``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


class Sidecar:
    """A uvicorn server for a service on a bound socket: ``run()`` blocks, ``stop()`` ends it
    (from another thread or a signal)."""

    def __init__(
        self,
        service: PlannerService | Methods,
        sock: socket.socket,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        log_level: str = "warning",
    ) -> None:
        try:
            import uvicorn
        except ImportError as exc:  # the serve extra is not installed
            raise PlannerError(
                'planner serve needs uvicorn: pip install "swarm-planner[serve]"'
            ) from exc
        self.sock = sock
        config = uvicorn.Config(
            make_app(service, max_body_bytes=max_body_bytes),
            log_level=log_level,
            access_log=False,
            lifespan="on",
            timeout_keep_alive=30,
        )
        self.server = uvicorn.Server(config)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def run(self) -> None:
        self.server.run(sockets=[self.sock])

    def stop(self) -> None:
        self.server.should_exit = True


def _worker(
    build: Callable[[], PlannerService],
    sock: socket.socket,
    conn: Any,
    max_body_bytes: int,
) -> None:
    """One worker process: its own service, the shared socket, and a relay thread applying
    what the other workers publish."""
    import threading

    methods = Methods(build(), publish=conn.send)

    def relay() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            try:
                methods.apply(message)
            except Exception:  # a change that failed here fails on its own worker too
                continue

    threading.Thread(target=relay, daemon=True, name="sidecar-relay").start()
    Sidecar(methods, sock, max_body_bytes=max_body_bytes).run()


def serve_workers(
    build: Callable[[], PlannerService],
    sock: socket.socket,
    workers: int,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> None:
    """Serve with ``workers`` processes on one socket (each builds its own service; the kernel
    spreads connections over them). Runs added and bundles reloaded through one worker are
    relayed to the others, within milliseconds. Returns when a worker exits or on SIGTERM or
    SIGINT (the workers are stopped)."""
    import multiprocessing
    import multiprocessing.connection
    import signal

    context = multiprocessing.get_context("fork")
    links, processes = [], []
    for _ in range(workers):
        mine, theirs = context.Pipe()
        process = context.Process(
            target=_worker, args=(build, sock, theirs, max_body_bytes), daemon=True
        )
        process.start()
        links.append(mine)
        processes.append(process)

    def stop(*_: Any, code: int = 0) -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()
        raise SystemExit(code)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sentinels = {p.sentinel for p in processes}
    by_id = {id(link): link for link in links}
    while True:
        ready = multiprocessing.connection.wait([*links, *sentinels])
        for item in ready:
            link = by_id.get(id(item))
            if link is None:  # a worker exited: stop the others, and say so
                stop(code=1)
                continue
            try:
                message = link.recv()
            except (EOFError, OSError):
                stop(code=1)
                continue
            for other in links:
                if other is not link:
                    other.send(message)
