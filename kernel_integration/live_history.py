"""The history a decision is built from, kept up to date as archives land.

The dataset builder's retrieval rule (:class:`~swarm_planner.core.history.HistoryIndex` and
:func:`~swarm_planner.core.dataset.dispatch_input`), fed run by run: a kernel adds each
finished run (or its archive folder) and the next decision sees it, with no rescan of the
archives (the field's kernel rescans every archive on every call). Run records are interned
as they are added (statuses, fail codes, gates, actions, tags and names are shared between
runs), so that a million runs fit in well under a KiB each.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from swarm_planner.core import validation
from swarm_planner.core.action_space import ActionSpace
from swarm_planner.core.archives import read_root, read_run
from swarm_planner.core.config import HistoryConfig
from swarm_planner.core.contracts import (
    Issue,
    PlannerInput,
    RunSummary,
    SystemState,
    UniverseDefaults,
)
from swarm_planner.core.dataset import dispatch_input
from swarm_planner.core.history import HistoryIndex, scorer_named
from swarm_planner.core.keywords import issue_keywords

_INTERN_LIMIT = 1 << 16
"""Distinct shared parts remembered (outcomes, actions, tag sets); past it, parts are kept
as they come (a stream of unique outcomes must not grow a second copy of them)."""


class LiveHistory:
    """Similar-run retrieval at decision time, updated incrementally."""

    def __init__(
        self,
        config: HistoryConfig | None = None,
        space: ActionSpace | None = None,
        *,
        universe_id: str = "default",
        universe_defaults: UniverseDefaults | None = None,
    ) -> None:
        self.config = config or HistoryConfig()
        self.space = space or ActionSpace()
        self.scorer = scorer_named(self.config.scorer)
        self.universe_id = universe_id
        self.universe_defaults = universe_defaults or UniverseDefaults()
        self.index = HistoryIndex(window=self.config.window)
        self._keywords: dict[str, tuple[str, ...]] = {}
        self._shared: dict[Any, Any] = {}

    def __len__(self) -> int:
        return len(self.index)

    def _share(self, part: Any) -> Any:
        known = self._shared.get(part)
        if known is not None:
            return known
        if len(self._shared) < _INTERN_LIMIT:
            self._shared[part] = part
        return part

    def _interned(self, run: RunSummary) -> RunSummary:
        def text(value: str | None) -> str | None:
            return None if value is None else sys.intern(value)

        interned = attrs.evolve(
            run,
            job_type=sys.intern(run.job_type),
            domain=sys.intern(run.domain),
            issue_id=text(run.issue_id),
            action_executed=self._share(run.action_executed),
            runtime=self._share(run.runtime),
            outcome=self._share(run.outcome),
            tags=None if run.tags is None else self._share(tuple(map(sys.intern, run.tags))),
            universe_id=text(run.universe_id),
        )
        # The outcome key (status, duration, action, fail codes, gates) is a tuple per run;
        # equal ones are shared like the parts above.
        object.__setattr__(interned, "outcome_key", self._share(interned.outcome_key))
        return interned

    def add(self, run: RunSummary, issue: Issue | None = None) -> None:
        """Index a finished run; ``issue`` (its issue record) gives its keywords, else the
        keywords of an issue seen before under the same id. A run that is not a valid
        ``RunSummary`` is a ContractError here, before it can reach a decision."""
        validation.check_record(run, RunSummary, source="run")  # a kernel may build it in code
        if issue is not None:
            validation.check_record(issue, Issue, source="issue")
        keywords: tuple[str, ...] = ()
        if issue is not None:
            keywords = self._share(issue_keywords(issue))
            self._keywords[issue.issue_id] = keywords
        elif run.issue_id is not None:
            keywords = self._keywords.get(run.issue_id, ())
        interned = self._interned(run)
        validation.remember_valid(interned)  # made of checked parts: not walked per decision
        self.index.add(interned, keywords)

    def add_archive(self, directory: str | Path, issue: Issue | None = None) -> RunSummary:
        """Index one archive folder that just landed (read as the dataset builder reads it)."""
        run = read_run(Path(directory)).summary
        self.add(run, issue)
        return run

    def add_many(self, runs: Iterable[RunSummary], issues: dict[str, Issue] | None = None) -> None:
        issues = issues or {}
        for run in runs:
            self.add(run, issues.get(run.issue_id or ""))

    @classmethod
    def from_root(
        cls, root: str | Path, config: HistoryConfig | None = None, **kwargs: Any
    ) -> LiveHistory:
        """The history of a kernel root, read once (in time order, as the builder reads it)."""
        kernel = read_root(root)
        live = cls(
            config,
            ActionSpace(swarm_ids=kernel.universe.swarm_ids),
            universe_id=kernel.universe.universe_id,
            universe_defaults=kernel.universe.defaults,
            **kwargs,
        )
        live.add_many((r.summary for r in kernel.runs), kernel.issues)
        return live

    def input_for(
        self,
        issue: Issue,
        *,
        job_type: str,
        system_state: SystemState | None = None,
        now_ms: int | None = None,
    ) -> PlannerInput:
        """The planner_input for dispatching ``issue`` now (or at ``now_ms``)."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return dispatch_input(
            self.index,
            issue,
            job_type=job_type,
            started_ms=now,
            attempts=self.index.attempts(issue.issue_id, now),
            n_similar=self.config.n_similar,
            scorer=self.scorer,
            universe_id=self.universe_id,
            space=self.space,
            universe_defaults=self.universe_defaults,
            system_state=system_state,
        )
