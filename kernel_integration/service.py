"""The decision service: the one path from a kernel's question to a recorded, safe answer.

``PlannerService`` is built from the ``planner:`` config through the plugin host (``model.type``
and ``model.fallback`` are plugin names; which policy serves a bundle is
:func:`~swarm_planner.core.bundle.bundle_servers`' rule). It loads the model once, retries a
failed load on ``model.retry_seconds`` rather than caching the failure, and answers every call
with a :class:`~.decision.Decision`: never an exception. ``planner plan``, the sidecar, the
closed loop and the field drop-in all decide through it.

The order of a decision: the input is checked; the baseline is the kernel's (or the fallback
plugin's decision); ``off`` returns it; then the gate (model unavailable, job type not enabled,
inference error, inference too slow, low confidence, prediction invalid or outside the space,
the topology change, the safety caps and ``reductions_only`` (clamped), ``force_swarm``),
optional safe exploration, and in ``log`` mode the baseline runs while the decision is kept.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from swarm_planner import __version__
from swarm_planner.core.action_space import NA, ActionSpace, JointAction
from swarm_planner.core.bundle import (
    EXPORTED_SERVER,
    BundleError,
    bundle_servers,
    open_bundle,
    serving_policy,
)
from swarm_planner.core.config import PlannerConfig, load_config, policy_options, takes_path
from swarm_planner.core.contracts import (
    Issue,
    ModelRef,
    PlannerInput,
    RunSummary,
    SystemState,
    check_input,
)
from swarm_planner.core.errors import PlannerError
from swarm_planner.core.history import RETRIEVAL
from swarm_planner.core.plugins import PluginHost, get_host
from swarm_planner.core.protocols import ActionDistribution, Fallback, Policy
from swarm_planner.core.recording import (
    executed_plan_from_action,
    now_rfc3339,
    planner_action_for,
    write_planner_section,
)
from swarm_planner.core.registry import Registry, resolve_model_path
from swarm_planner.kernel_integration import gate
from swarm_planner.kernel_integration.decision import LOGGING_KEY, Branch, Decision, Recorded
from swarm_planner.kernel_integration.live_history import LiveHistory

REGISTRY_POLL_SECONDS = 1.0
"""How often a service serving ``registry://DIR`` reads the registry's ``current``."""
_SAFE_MEMO = 512
"""Safe sets remembered per (space, job type, baseline); cleared when full."""


@attrs.frozen
class LoadedModel:
    """A policy that loaded, and what identifies it in every decision it makes."""

    policy: Policy
    name: str
    ref: ModelRef | None
    bundle_id: str | None
    path: str | None
    version: str | None = None
    """The registry version it is (``planner.model.path: registry://DIR``), else None."""


@attrs.define
class LoadState:
    """The model's load history: the retry schedule's position and the last error."""

    error: str | None = None
    failures: int = 0
    retry_at: float = 0.0
    loads: int = 0


_SAFEST = JointAction("serial_handoff", 1, NA, NA)
"""One serial agent under the kernel's own limits: valid in every space with the default rules."""
_MAX_BIN = 1_000_000


def _plain_action(value: Any) -> bool:
    """Whether ``value`` is a JointAction of plain values (a text swarm; bins NA or whole
    numbers from 1 to a million), which records can be built from."""
    if type(value) is not JointAction:
        return False
    swarm = value.swarm_id
    if type(swarm) is not str or not swarm or len(swarm) > 200:
        return False
    return all(
        b == NA or (type(b) is int and 1 <= b <= _MAX_BIN)
        for b in (value.max_candidates_bin, value.max_minutes_bin, value.max_iterations_bin)
    )


def _usable_baseline(
    baseline: Any, space: ActionSpace, job: str
) -> tuple[JointAction | None, str | None]:
    """The kernel's baseline as a valid action of the input's space (repaired to the nearest
    valid one of its topology), or None with the reason it cannot be used."""
    if baseline is None:
        return None, None
    if not _plain_action(baseline):
        return None, f"baseline {baseline!r:.120}: not a plain action; the fallback's decision runs"
    if space.is_valid(baseline, job):
        return baseline, None
    repaired = space.nearest_valid(baseline, job)
    if repaired is None:
        return None, (
            f"baseline {baseline.text}: not an action of this space; the fallback's decision runs"
        )
    return repaired, None


@attrs.define
class _Known:
    """What a decision had established when something failed (for the rescue)."""

    x: PlannerInput | None = None
    base: JointAction | None = None
    note: str | None = None
    """What was wrong with the kernel's baseline, if anything (shown when nothing else is)."""


@attrs.frozen
class _Answer:
    """What the model answered, before the gate decides what runs."""

    choice: JointAction
    probs: dict[str, dict[str, float]]
    confidence: float
    abstain: bool
    reason: str
    model: ModelRef | None
    input_hash: str


class PlannerService:
    """Decides how each issue runs; see the module docstring for the order of the gate."""

    def __init__(
        self,
        config: PlannerConfig,
        *,
        host: PluginHost | None = None,
        clock: Callable[[], float] = time.monotonic,
        history: LiveHistory | None = None,
    ) -> None:
        self.config = config
        self.host = host or get_host()
        self.clock = clock
        self.fallback: Fallback = self.host.create(
            "fallback",
            config.model.fallback,
            config.model.fallback_options,
            path="planner.model.fallback_options",
            space=config.action_space,
        )
        self.history = (
            history if history is not None else LiveHistory(config.history, config.action_space)
        )
        self.counts: Counter[str] = Counter()
        self.load_state = LoadState()
        self._model: LoadedModel | None = None
        self._load_lock = threading.Lock()
        self._safe: dict[tuple[ActionSpace, str, JointAction | None], tuple[JointAction, ...]] = {}
        self._clamps: dict[
            tuple[JointAction, ActionSpace, str, JointAction | None], gate.Clamped | None
        ] = {}
        self._registry_check_at = 0.0
        self.registry_error: str | None = None
        """Why the registry's ``current`` could not be followed, if it could not."""
        self._last_resort = self._emergency(None, "internal_error", None)
        """Built once, so that even a failure to build records still answers."""
        if config.mode != "off":
            self._load()

    @classmethod
    def from_config_file(cls, path: str | Path, **kwargs: Any) -> PlannerService:
        """A service from a kernel YAML config (a bad config is a ConfigError, at start-up)."""
        host = kwargs.pop("host", None) or get_host()
        return cls(load_config(path, host=host), host=host, **kwargs)

    # -- the model ---------------------------------------------------------------------------

    @property
    def model(self) -> LoadedModel | None:
        return self._model

    def _build(self, path: str | None) -> LoadedModel:
        model = self.config.model
        version = None
        if path:
            path, version = resolve_model_path(path)  # registry://DIR: its current version
        config = attrs.evolve(self.config, model=attrs.evolve(model, path=path))
        ref: ModelRef | None = None
        bundle_id = None
        if not takes_path(config, self.host):
            path = None  # a policy without a bundle (the rule table): model.path means nothing
        if path == "":
            raise BundleError("no bundle: planner.model.path is empty")
        if path is not None:
            metadata = open_bundle(path)
            servers = bundle_servers(metadata)
            if model.type not in servers:
                raise BundleError(
                    f"{path}: a {metadata.get('model_type')!r} bundle is served by "
                    f"{' or '.join(servers)}, not {model.type!r} (set planner.model.type: "
                    f"{servers[0]})"
                )
            bundle_id = str(metadata.get("seal", ""))[:12] or None
            dataset = str(metadata.get("dataset_hash") or "")[:12]
            ref = ModelRef(
                f"{metadata.get('model_type')}@{Path(path).name}:{dataset}:{bundle_id}",
                __version__,
                metadata.get("git_revision"),
            )
        options = policy_options(config, self.host)
        policy = self.host.create(
            "policy", model.type, options, path="planner.model.options", space=config.action_space
        )
        if ref is None:
            ref = ModelRef(model.type, __version__)
        return LoadedModel(policy, model.type, ref, bundle_id, path, version)

    def _load(self) -> None:
        """Load the model if none is loaded and the retry schedule says it is due. A decision
        never waits for a load another thread is doing (a reload): it goes on without it."""
        state = self.load_state
        if self._model is not None:
            if self._model.version is not None:
                self._follow_registry()
            return
        if self.clock() < state.retry_at:
            return
        if not self._load_lock.acquire(blocking=False):
            return
        try:
            if self._model is None and self.clock() >= state.retry_at:
                try:
                    self._installed(self._build(self.config.model.path), None)
                except Exception as exc:  # any plugin may fail to build: recorded, retried
                    self._failed(exc)
        finally:
            self._load_lock.release()

    def _follow_registry(self) -> None:
        """Served from a registry: at most every REGISTRY_POLL_SECONDS, read its ``current``
        and, when another version was promoted (or rolled back to), load it in the background;
        decisions go on with the model they have until it is in place. Never raises."""
        now = self.clock()
        if now < self._registry_check_at:
            return
        self._registry_check_at = now + REGISTRY_POLL_SECONDS
        loaded = self._model
        try:
            wanted = Registry(str(self.config.model.path)).current_version()
        except Exception as exc:  # a registry being repaired: keep serving what is loaded
            self.registry_error = f"{type(exc).__name__}: {exc}"
            return
        self.registry_error = None
        if loaded is None or wanted is None or wanted == loaded.version:
            return
        if self._load_lock.locked():
            return

        def follow() -> None:
            try:
                self.reload()
            except Exception as exc:  # the new version did not load: the old one stays
                self.registry_error = f"{wanted} did not load: {exc}"

        threading.Thread(target=follow, name="planner-registry-follow", daemon=True).start()

    def _failed(self, exc: Exception) -> None:
        state = self.load_state
        state.failures += 1
        schedule = self.config.model.retry_seconds
        state.retry_at = self.clock() + schedule[min(state.failures, len(schedule)) - 1]
        state.error = f"{type(exc).__name__}: {exc}"

    def _installed(self, loaded: LoadedModel, path: str | None) -> None:
        self._model = loaded
        state = self.load_state
        state.error, state.failures, state.retry_at = None, 0, 0.0
        state.loads += 1
        if path is not None:
            model = attrs.evolve(self.config.model, path=path)
            self.config = attrs.evolve(self.config, model=model)

    def reload(self, path: str | None = None) -> LoadedModel:
        """Load ``path`` (default: the configured bundle) and switch to it once it loaded;
        decisions in flight, and decisions made while it loads, use the model they found. A
        bundle that does not load raises a BundleError here (the caller asked) and the
        current model stays."""
        target = self.config.model.path if path is None else path
        with self._load_lock:
            try:
                loaded = self._build(target)
            except Exception as exc:
                if self._model is None:
                    self._failed(exc)
                raise BundleError(
                    f"{target}: did not load ({type(exc).__name__}: {exc}); the current model stays"
                ) from exc
            self._installed(loaded, path)
        return loaded

    # -- deciding ----------------------------------------------------------------------------

    def decide(self, planner_input: Any, baseline: JointAction | None = None) -> Decision:
        """One decision for ``planner_input``; ``baseline`` is what the kernel would run
        without a planner (absent: the fallback plugin's decision). Never raises."""
        started = time.perf_counter()
        known = _Known()
        try:
            decision = self._decide(planner_input, baseline, known)
        except (Exception, SystemExit) as exc:  # the last line: the kernel gets an answer
            decision = self._rescue(baseline, known, exc)
        if known.note is not None and decision.detail is None:
            object.__setattr__(decision, "detail", known.note)  # the baseline's own problem
        return self._finalized(decision, started)

    def decide_issue(
        self,
        issue: Issue,
        *,
        job_type: str,
        baseline: JointAction | None = None,
        system_state: SystemState | None = None,
        now_ms: int | None = None,
    ) -> Decision:
        """A decision from a bare issue: similar runs from the live history, the input built
        by the dataset builder's rule, then :meth:`decide`. Never raises."""
        started = time.perf_counter()
        try:
            planner_input = self.history.input_for(
                issue, job_type=job_type, system_state=system_state, now_ms=now_ms
            )
        except (Exception, SystemExit) as exc:
            return self._finalized(self._rescue(baseline, _Known(), exc), started)
        return self.decide(planner_input, baseline)

    def _finalized(self, decision: Decision, started: float) -> Decision:
        # Set on the record just built, before anyone else holds it (a frozen record: an
        # evolve would build it a second time on every decision).
        object.__setattr__(decision, "latency_us", (time.perf_counter() - started) * 1e6)
        self.counts[decision.reason] += 1
        return decision

    def _rescue(self, baseline: Any, known: _Known, exc: BaseException) -> Decision:
        """An unexpected error: the baseline, recorded with the input when it was valid."""
        detail = f"{type(exc).__name__}: {exc}"
        try:
            if known.x is not None and known.base is not None:
                return self._fallback_decision(known.x, known.base, "internal_error", detail)
        except (Exception, SystemExit):
            pass
        try:
            return self._emergency(baseline, "internal_error", detail)
        except (Exception, SystemExit):
            return attrs.evolve(self._last_resort, detail=detail[:2000])

    def _decide(self, planner_input: Any, baseline: Any, known: _Known) -> Decision:
        config = self.config
        try:
            x = check_input(planner_input)
        except PlannerError as exc:
            return self._emergency(baseline, "invalid_input", str(exc))
        known.x = x
        space, job = x.action_space, x.job_type
        given, base_problem = _usable_baseline(baseline, space, job)
        base, base_detail = self._baseline(x, given)
        base_detail = base_problem or base_detail
        known.base, known.note = base, base_detail
        if config.mode == "off":
            return self._plain(x, base, "off", "mode_off", base_detail)
        self._load()
        model = self._model
        if model is None:
            return self._fallback_decision(x, base, "model_unavailable", self.load_state.error)
        if job not in config.flags.enabled_job_types:
            return self._fallback_decision(x, base, "job_type_disabled", f"job_type {job!r}")
        t0 = time.perf_counter()
        try:
            answer = model.policy.predict(x)
        except Exception as exc:
            return self._fallback_decision(
                x, base, "inference_error", f"{type(exc).__name__}: {exc}", model=model
            )
        elapsed_ms = (time.perf_counter() - t0) * 1000.0
        if elapsed_ms > config.inference.timeout_ms:
            return self._fallback_decision(
                x,
                base,
                "inference_timeout",
                f"{elapsed_ms:.1f} ms > timeout_ms {config.inference.timeout_ms}",
                model=model,
            )
        problem = gate.distribution_problem(answer)
        if problem is not None:
            return self._fallback_decision(x, base, "prediction_invalid", problem, model=model)
        choice, confidence = gate.best_of(answer)
        answered = self._answer(x, answer, choice, confidence, model)
        threshold = config.inference.confidence_threshold
        if confidence < threshold:
            return self._fallback_decision(
                x,
                base,
                "low_confidence",
                f"confidence {confidence:.3f} < {threshold}",
                model=model,
                answered=answered,
            )
        if not space.is_valid(choice, job):
            return self._fallback_decision(
                x,
                base,
                "prediction_out_of_space",
                f"{choice.text} is not a valid action of {job!r}",
                model=model,
                answered=answered,
            )
        if not gate.swarm_allowed(config, base, choice.swarm_id):
            return self._fallback_decision(
                x,
                base,
                "swarm_mismatch",
                f"{base.swarm_id} -> {choice.swarm_id} is not in planner.safety.swarm_changes",
                model=model,
                answered=answered,
            )
        safe = self._safe_set(space, job, base)
        clamped = self._clamp(choice, safe, space, job, base)
        if clamped is None:
            return self._fallback_decision(
                x, base, "no_safe_action", None, model=model, answered=answered
            )
        executed, reason = clamped.action, "model"
        branch: Branch = "model"
        if "force_swarm" in clamped.clamps:
            branch, reason = "forced", "force_swarm"
        propensity = 1.0
        epsilon = config.exploration.epsilon
        logging = {executed.text: 1.0}
        if epsilon > 0.0 and config.mode == "enforce" and safe:
            share = gate.exploration_share(epsilon, safe)
            logging = {a.text: share for a in safe}
            logging[executed.text] = logging.get(executed.text, 0.0) + (1.0 - epsilon)
            if self._explores(x, epsilon):
                drawn = safe[self._draw(x, len(safe))]
                if drawn != executed:
                    executed, branch, reason = drawn, "exploration", "exploration"
            propensity = logging[executed.text]
        detail = None
        if clamped.clamps:
            detail = f"clamped {choice.text} -> {clamped.action.text}: {', '.join(clamped.clamps)}"
        return self._finish(
            x,
            answered,
            executed,
            base,
            branch,
            reason,
            detail,
            propensity,
            clamped.clamps,
            model,
            logging,
        )

    # -- parts of a decision ----------------------------------------------------------------

    def _baseline(
        self, x: PlannerInput, given: JointAction | None
    ) -> tuple[JointAction, str | None]:
        if given is not None:
            return given, None
        try:
            action = self.fallback.decide(x)
            if isinstance(action, JointAction) and x.action_space.is_valid(action, x.job_type):
                return action, None
            problem = f"the fallback answered {action!r}, not a valid action"
        except Exception as exc:
            problem = f"the fallback failed: {type(exc).__name__}: {exc}"
        return conservative_action(x), problem

    def _safe_set(
        self, space: ActionSpace, job: str, base: JointAction | None
    ) -> tuple[JointAction, ...]:
        key = (space, job, base)
        safe = self._safe.get(key)
        if safe is None:
            if len(self._safe) >= _SAFE_MEMO:
                self._safe = {}
            safe = self._safe[key] = gate.safe_actions(self.config, space, job, base)
        return safe

    def _clamp(
        self,
        choice: JointAction,
        safe: tuple[JointAction, ...],
        space: ActionSpace,
        job: str,
        base: JointAction | None,
    ) -> gate.Clamped | None:
        key = (choice, space, job, base)
        if key in self._clamps:
            return self._clamps[key]
        if len(self._clamps) >= _SAFE_MEMO * 8:
            self._clamps = {}
        clamped = self._clamps[key] = gate.clamp(choice, safe, self.config, base, space)
        return clamped

    def _seed(self, x: PlannerInput, salt: str) -> int:
        text = f"{x.input_hash()}:{self.config.exploration.seed}:{salt}"
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")

    def _explores(self, x: PlannerInput, epsilon: float) -> bool:
        return self._seed(x, "explore") / 2.0**64 < epsilon

    def _draw(self, x: PlannerInput, n: int) -> int:
        return self._seed(x, "draw") % n

    def _answer(
        self,
        x: PlannerInput,
        answer: ActionDistribution,
        choice: JointAction,
        confidence: float,
        model: LoadedModel,
    ) -> _Answer:
        threshold = self.config.inference.confidence_threshold
        abstain = confidence < threshold
        return _Answer(
            choice,
            answer.as_joint_probs(),
            min(1.0, max(0.0, confidence)),
            abstain,
            (
                f"confidence {confidence:.3f} below {threshold}: the kernel's default decides"
                if abstain
                else f"model choice with confidence {confidence:.3f}"
            ),
            model.ref,
            x.input_hash(),
        )

    def _finish(
        self,
        x: PlannerInput,
        answered: _Answer,
        executed: JointAction,
        base: JointAction,
        branch: Branch,
        reason: str,
        detail: str | None,
        propensity: float,
        clamps: tuple[str, ...],
        model: LoadedModel | None,
        logging: dict[str, float],
    ) -> Decision:
        mode = self.config.mode
        if mode == "log":
            # Shadow: the decision is kept, the baseline runs (with certainty).
            plan = executed_plan_from_action(
                base, fallback_applied=True, fallback_reason="log_only"
            )
            run, propensity, logging = base, 1.0, {base.text: 1.0}
            reason_out = "log_only" if reason == "model" else reason
        else:
            fallback = branch == "fallback"
            plan = executed_plan_from_action(
                executed,
                fallback_applied=fallback,
                fallback_reason=reason if fallback else None,
            )
            run, reason_out = executed, reason
        return Decision(
            planner_action=planner_action_for(
                answered.choice,
                probs={**answered.probs, LOGGING_KEY: logging},
                confidence=answered.confidence,
                abstain_to_default=answered.abstain,
                reason=answered.reason,
                model=answered.model,
                input_hash=answered.input_hash,
            ),
            executed_plan=plan,
            executed=run,
            branch=branch,
            reason=reason_out,
            mode=mode,
            detail=detail,
            propensity=propensity,
            clamps=clamps,
            model=None if model is None else (model.ref.checkpoint_id if model.ref else model.name),
            timeout_seconds_override=override_seconds(run),
            planner_input=x,
        )

    def _plain(
        self, x: PlannerInput, base: JointAction, branch: Branch, reason: str, detail: str | None
    ) -> Decision:
        run, clamps = self._capped(x, base) if branch == "fallback" else (base, ())
        answered = planner_action_for(
            base,
            probs={LOGGING_KEY: {run.text: 1.0}},
            reason=gate.REASONS[reason],
            model=ModelRef(f"fallback:{self.config.model.fallback}"),
            input_hash=x.input_hash(),
        )
        plan = executed_plan_from_action(
            run, fallback_applied=branch != "model", fallback_reason=reason
        )
        return Decision(
            planner_action=answered,
            executed_plan=plan,
            executed=run,
            branch=branch,
            reason=reason,
            mode=self.config.mode,
            detail=detail,
            clamps=clamps,
            model=f"fallback:{self.config.model.fallback}",
            timeout_seconds_override=override_seconds(run),
            planner_input=x,
        )

    def _capped(self, x: PlannerInput, base: JointAction) -> tuple[JointAction, tuple[str, ...]]:
        """In enforce mode the safety caps (and ``force_swarm``) bound what a fallback runs
        too; ``off`` and ``log`` never change what the kernel runs. When nothing within the
        caps is valid, the baseline runs as it is (noted in ``clamps``)."""
        if self.config.mode != "enforce":
            return base, ()
        safe = self._safe_set(x.action_space, x.job_type, None)
        clamped = self._clamp(base, safe, x.action_space, x.job_type, None)
        if clamped is None:
            return base, ("no_action_within_the_caps",)
        return clamped.action, clamped.clamps

    def _fallback_decision(
        self,
        x: PlannerInput | None,
        base: JointAction | None,
        reason: str,
        detail: str | None,
        *,
        model: LoadedModel | None = None,
        answered: _Answer | None = None,
    ) -> Decision:
        if x is None or base is None:
            return self._emergency(base, reason, detail)
        if answered is None:
            return self._plain(x, base, "fallback", reason, detail)
        run, clamps = self._capped(x, base)
        return self._finish(
            x, answered, run, base, "fallback", reason, detail, 1.0, clamps, model, {run.text: 1.0}
        )

    def _emergency(self, baseline: Any, reason: str, detail: str | None) -> Decision:
        """A decision without a usable input: the kernel's baseline when it is a plain
        action, else one serial agent under the kernel's own limits. Records that cannot fail."""
        action = baseline if _plain_action(baseline) else _SAFEST
        plan = executed_plan_from_action(action, fallback_applied=True, fallback_reason=reason)
        answered = planner_action_for(
            action, reason=gate.REASONS.get(reason, reason), model=ModelRef("emergency")
        )
        return Decision(
            planner_action=answered,
            executed_plan=plan,
            executed=action,
            branch="fallback",
            reason=reason,
            mode=self.config.mode,
            detail=None if detail is None else detail[:2000],
            model="emergency",
            timeout_seconds_override=override_seconds(action),
            planner_input=None,
        )

    # -- recording and reporting --------------------------------------------------------------

    def record(self, manifest: Path | str | Mapping[str, Any], decision: Decision) -> Recorded:
        """Write the decision into a manifest as kernels store it: ``manifest["planner"] =
        {planner_input, planner_action, executed_plan, timeout_seconds_override}`` (without
        ``planner_input`` for a decision on an invalid input). A path is updated in place
        (atomically); a mapping is copied and returned updated. Never raises: a manifest that
        cannot be read or written, or a record the archive reader would refuse, is reported
        in ``problem`` with nothing written."""
        try:
            section = decision.planner_section()
            if isinstance(manifest, Mapping):
                out = dict(manifest)
                out["planner"] = section
                return Recorded(section, out)
            write_planner_section(Path(manifest), section)
            return Recorded(section)
        except (Exception, SystemExit) as exc:
            return Recorded(None, problem=f"{type(exc).__name__}: {exc}"[:2000])

    def add_run(self, run: RunSummary, issue: Issue | None = None) -> None:
        """A run that just finished: indexed for the next decisions (no rescan)."""
        self.history.add(run, issue)

    def info(self) -> dict[str, Any]:
        model = self._model
        return {
            "swarm_planner": __version__,
            "mode": self.config.mode,
            "policy": self.config.model.type,
            "fallback": self.config.model.fallback,
            "bundle": None if model is None else model.path,
            "bundle_id": None if model is None else model.bundle_id,
            "registry_version": None if model is None else model.version,
            "registry_error": self.registry_error,
            "checkpoint_id": None
            if model is None or model.ref is None
            else model.ref.checkpoint_id,
            "load_error": self.load_state.error,
            "history_runs": len(self.history),
            "retrieval": RETRIEVAL,
            "pid": os.getpid(),
            "plugins": sorted(f"{e.kind}:{e.name}" for e in self.host.entries()),
        }

    def health(self) -> dict[str, Any]:
        model_ok = self.config.mode == "off" or self._model is not None
        return {
            "status": "ok" if model_ok else "degraded",
            "model_loaded": self._model is not None,
            "load_error": self.load_state.error,
            "decisions": sum(self.counts.values()),
            "reasons": dict(sorted(self.counts.items())),
            "time": now_rfc3339(),
        }


def bundle_config(path: str) -> dict[str, Any]:
    """The ``planner:`` section that serves one bundle as it says it is served (enforce mode,
    default inference and safety); a folder that is not a bundle keeps the ``onnx`` policy, so
    that the service reports the bundle as unavailable rather than failing to start."""
    try:
        kind = serving_policy(path)
    except (BundleError, OSError):
        kind = EXPORTED_SERVER
    return {"mode": "enforce", "model": {"type": kind, "path": path}}


def override_seconds(action: JointAction) -> int | None:
    """``timeout_seconds_override`` of an executed action: its minutes cap in seconds (none
    when the action leaves the timeout to the kernel)."""
    minutes = action.max_minutes_bin
    return None if minutes == NA else int(minutes) * 60


def conservative_action(x: PlannerInput) -> JointAction:
    """The action that costs least when nothing else can decide: one serial agent (or the
    universe's default topology) under the kernel's own limits, repaired to validity."""
    space, job = x.action_space, x.job_type
    swarm = x.universe_defaults.swarm_id or "serial_handoff"
    for candidate in (swarm, "serial_handoff"):
        if candidate in space.swarm_ids:
            action = space.nearest_valid(JointAction(candidate, 1, NA, NA), job)
            if action is not None:
                return action
    valid = space.valid_actions(job)
    if valid:
        return min(valid, key=lambda a: (a.swarm_id != "serial_handoff", a.canonical_key()))
    return JointAction("serial_handoff", 1, NA, NA)


__all__ = ["Decision", "LoadedModel", "PlannerService", "conservative_action", "override_seconds"]
