"""The apply pipeline of one PBX: validate → write → reload → read back → audit; roll back by
itself when Asterisk did not take the change.

One change at a time per PBX (a lock). Every step has a bound: file work runs in a worker thread,
every AMI action has a timeout, the database writes have theirs. A change either fully applies and
is confirmed by reading the objects back from Asterisk, or the files are put back as they were
(and Asterisk reloaded again) and the answer says what differed. Each attempt is audited.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ispbx.ami import AmiError, AmiMessage, AmiSession
from ispbx.gcpause import gc_paused
from ispbx.history import AuditEntry, AuditResult, FileChange, HistoryDatabaseError
from ispbx.history.service import History
from ispbx.listeners import Listeners
from ispbx.manage.files import (
    FileWriteError,
    Journal,
    apply_contents,
    remove_stale_temps,
    restore_pending,
    writable,
)
from ispbx.manage.guards import sorcery_refusal
from ispbx.manage.importer import ImportRow
from ispbx.manage.planner import Conflict, NotFound, Plan, Planner, Rejected, Workspace
from ispbx.manage.readback import Mismatch, ObjectKey, compare, read_endpoint
from ispbx.manage.reload import Reloader, ReloadError
from ispbx.manage.requests import CreateEndpoint, PatchEndpoint
from ispbx.pbx.inventory import Inventory
from ispbx.pjsip.store import ConfigStore

log = logging.getLogger(__name__)
LOCK_TIMEOUT = 60.0  # a change waits this long for the one before it
READBACK_PIPELINE = 4  # PJSIPShowEndpoint actions in flight while reading a change back


class ManageError(Exception):
    """A write that did not happen (or was undone); ``status`` is the HTTP status to answer."""

    status = 500

    def __init__(self, detail: str, *, mismatches: list[Mismatch] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.mismatches = mismatches or []


class ManageErrorNotFound(ManageError):
    status = 404


class PreconditionRequired(ManageError):
    status = 428


class PreconditionFailed(ManageError):
    status = 412


class WriteUnavailable(ManageError):
    status = 503


class AsteriskFailed(ManageError):
    status = 502


class NotConfirmed(ManageError):
    status = 409


@dataclass(frozen=True)
class Who:
    name: str
    role: str


@dataclass
class Outcome:
    operation: str
    extensions: list[str]
    dry_run: bool
    diff: dict[str, str]
    etag: str
    warnings: list[str] = field(default_factory=list)
    password: str | None = None
    passwords: dict[str, str] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    version: int | None = None


@dataclass(frozen=True)
class Attempt:
    """One audited write, for counting: what, how it ended, how long it held the PBX's lock."""

    operation: str
    result: AuditResult
    seconds: float
    rolled_back: bool  # the files were written and put back


Build = Callable[[Workspace], Plan]


class Steps:
    """How long each step of one write took, for the log line of an applied change."""

    def __init__(self) -> None:
        self._last = time.monotonic()
        self.took: list[tuple[str, float]] = []

    def done(self, step: str) -> None:
        now = time.monotonic()
        self.took.append((step, now - self._last))
        self._last = now

    def __str__(self) -> str:
        return ", ".join(f"{step} {seconds:.3f}" for step, seconds in self.took)


class ManageService:
    def __init__(
        self,
        pbx_id: str,
        session: AmiSession,
        store: ConfigStore,
        inventory: Inventory,
        history: History,
        *,
        managed: Path,
        journal: Journal,
    ) -> None:
        self.pbx_id = pbx_id
        self._session = session
        self._store = store
        self._inventory = inventory
        self._history = history
        self.main = store.view.path
        self.planner = Planner(self.main, managed)
        self._journal = journal
        self._reloader = Reloader(session)
        self._lock = asyncio.Lock()
        self.applied: Listeners[Outcome] = Listeners("applied change")
        self.attempted: Listeners[Attempt] = Listeners("audited write")
        self._started = 0.0  # when the change holding the lock got it

    async def recover(self) -> None:
        """At start: undo a write that a dead process left half done."""
        restored = await asyncio.to_thread(restore_pending, self._journal, self.main)
        await asyncio.to_thread(remove_stale_temps, {self.main.parent, self.planner.managed.parent})
        if restored:
            log.warning("restored %d config files from an interrupted write", len(restored))

    # -- the operations ------------------------------------------------------------------

    async def create(
        self, request: CreateEndpoint, who: Who, *, dry_run: bool, if_match: str | None
    ) -> Outcome:
        return await self._apply(
            "create",
            request.extension,
            lambda ws: self.planner.create(ws, request),
            who,
            dry_run=dry_run,
            if_match=if_match,
            required=False,
        )

    async def update(
        self, extension: str, patch: PatchEndpoint, who: Who, *, dry_run: bool, if_match: str | None
    ) -> Outcome:
        return await self._apply(
            "update",
            extension,
            lambda ws: self.planner.update(ws, extension, patch),
            who,
            dry_run=dry_run,
            if_match=if_match,
            required=True,
        )

    async def delete(
        self, extension: str, who: Who, *, dry_run: bool, if_match: str | None
    ) -> Outcome:
        return await self._apply(
            "delete",
            extension,
            lambda ws: self.planner.delete(ws, extension),
            who,
            dry_run=dry_run,
            if_match=if_match,
            required=True,
        )

    async def import_rows(
        self, rows: list[ImportRow], who: Who, *, dry_run: bool, if_match: str | None
    ) -> Outcome:
        return await self._apply(
            "import",
            None,
            lambda ws: self.planner.import_rows(ws, rows),
            who,
            dry_run=dry_run,
            if_match=if_match,
            required=False,
        )

    async def revert(
        self, version_id: int, who: Who, *, dry_run: bool, if_match: str | None
    ) -> Outcome:
        version = await self._history.queries.config_version(self.pbx_id, version_id)
        if version is None:
            raise ManageErrorNotFound(f"no config version {version_id}")
        files = {
            Path(change.path): None if change.before is None else change.before.encode()
            for change in version.files
        }
        return await self._apply(
            "revert",
            str(version_id),
            lambda ws: self.planner.revert(ws, files),
            who,
            dry_run=dry_run,
            if_match=if_match,
            required=True,
        )

    # -- the pipeline --------------------------------------------------------------------

    async def _apply(
        self,
        operation: str,
        subject: str | None,
        build: Build,
        who: Who,
        *,
        dry_run: bool,
        if_match: str | None,
        required: bool,
    ) -> Outcome:
        if required and if_match is None:
            raise PreconditionRequired(
                "send If-Match with the ETag of GET /endpoints/{extension}/config (or of "
                "GET /config/versions), so a change made meanwhile is not overwritten"
            )
        self._guard()
        try:
            async with asyncio.timeout(LOCK_TIMEOUT):
                await self._lock.acquire()
        except TimeoutError:
            raise WriteUnavailable("another change of this PBX is still being applied") from None
        self._started = time.monotonic()
        try:
            return await self._apply_locked(
                operation, subject, build, who, dry_run=dry_run, if_match=if_match
            )
        finally:
            self._lock.release()

    def _guard(self) -> None:
        if self._session.client is None:
            raise WriteUnavailable(
                f"AMI at {self._session.address} is not connected: a change could not be reloaded "
                "and confirmed, so none is written"
            )
        refusal = sorcery_refusal(self.main)
        if refusal is not None:
            raise NotConfirmed(refusal)

    async def _apply_locked(
        self,
        operation: str,
        subject: str | None,
        build: Build,
        who: Who,
        *,
        dry_run: bool,
        if_match: str | None,
    ) -> Outcome:
        view = self._store.view
        # the store's parse is of these very bytes only when the latest read had no error
        fresh = view.config is not None and view.error is None
        parsed = (view.config, view.check, view.etag) if fresh and view.config else None

        steps = Steps()

        def plan_it() -> tuple[Workspace, Plan, dict[str, str]]:
            with gc_paused():
                return planned()

        def planned() -> tuple[Workspace, Plan, dict[str, str]]:
            ws = Workspace.read(self.main, parsed)
            if if_match is not None and if_match.strip() not in (ws.etag, "*"):
                raise PreconditionFailed(
                    "the configuration files changed since that ETag (another change, or a hand "
                    "edit): read them again and re-apply"
                )
            steps.done("read")
            plan = build(ws)
            steps.done("plan")
            diff = plan.diff(ws.contents)
            steps.done("diff")
            return ws, plan, diff

        try:
            ws, plan, diff = await asyncio.to_thread(plan_it)
        except (Rejected, Conflict, NotFound, PreconditionFailed) as exc:
            if not dry_run:
                await self._audit(operation, subject, who, AuditResult.REJECTED, detail=str(exc))
            raise
        outcome = Outcome(
            operation,
            plan.extensions,
            dry_run,
            diff,
            ws.etag,
            warnings=plan.warnings,
            password=plan.password,
            passwords=plan.passwords,
            kept=plan.kept,
        )
        if dry_run:
            return outcome
        # Until the write is confirmed, kept and adopted, the files are not re-read behind it
        # and the resync its reload sets off waits (it runs once the write is done).
        with self._store.held():
            async with self._inventory.resyncs_held():
                await self._write_and_confirm(plan, ws, who, subject, outcome, steps=steps)
        log.info(
            "%s %s applied in %.2f s (%s)",
            operation,
            _names(plan.extensions) or subject or "",
            sum(seconds for _step, seconds in steps.took),
            steps,
        )
        return outcome

    async def _write_and_confirm(
        self,
        plan: Plan,
        ws: Workspace,
        who: Who,
        subject: str | None,
        outcome: Outcome,
        *,
        steps: Steps,
    ) -> None:
        text = "".join(outcome.diff.values())
        for path in plan.files:
            problem = writable(path)
            if problem is not None:
                await self._audit(
                    plan.operation, subject, who, AuditResult.FAILED, diff=text, detail=problem
                )
                raise WriteUnavailable(f"cannot write the configuration: {problem}")
        try:
            previous = await asyncio.to_thread(
                apply_contents, plan.files, self._journal, like=self.main
            )
        except FileWriteError as exc:
            await self._audit(
                plan.operation, subject, who, AuditResult.FAILED, diff=text, detail=str(exc)
            )
            raise WriteUnavailable(f"cannot write the configuration: {exc}") from None
        steps.done("write")
        try:
            await self._reloader.reload()
            steps.done("reload")
            mismatches, items = await self._read_back(plan)
            steps.done("read back")
        except (ReloadError, AmiError) as exc:
            await self._roll_back(previous)
            await self._audit(
                plan.operation,
                subject,
                who,
                AuditResult.FAILED,
                diff=text,
                detail=str(exc),
                rolled_back=True,
            )
            raise AsteriskFailed(
                f"Asterisk did not take the change, the files were put back: {exc}"
            ) from None
        if mismatches:
            await self._roll_back(previous)
            detail = "; ".join(m.describe() for m in mismatches)
            await self._audit(
                plan.operation,
                subject,
                who,
                AuditResult.ROLLED_BACK,
                diff=text,
                detail=detail,
                rolled_back=True,
            )
            raise NotConfirmed(
                f"Asterisk did not load the change as meant, so it was rolled back: {detail}",
                mismatches=mismatches,
            )
        for name, found in items.items():
            self._inventory.accept_readback(name, found)
        before, version = await self._keep_version(plan, previous, who)
        outcome.version = version
        await self._audit(
            plan.operation,
            subject,
            who,
            AuditResult.APPLIED,
            diff=text,
            versions=(before, version),
        )
        steps.done("version and audit")
        contents = {**ws.contents, **plan.files}
        view = await asyncio.to_thread(
            self._store.adopt,
            plan.after,
            plan.check,
            contents,
            plan.files,
            frozenset(plan.extensions),
        )
        outcome.etag = view.etag
        self.applied.emit(outcome)
        steps.done("list")

    async def _read_back(
        self, plan: Plan
    ) -> tuple[list[Mismatch], dict[str, list[AmiMessage] | None]]:
        expected = plan.expectations()
        items = await self._read_endpoints(plan.extensions)
        mismatches: list[Mismatch] = []
        for name in plan.extensions:
            mismatches += compare(_expected_of(expected, plan, name), items[name])
        return mismatches, items

    async def _read_endpoints(self, names: list[str]) -> dict[str, list[AmiMessage] | None]:
        """PJSIPShowEndpoint of each, a few in flight at once (Asterisk answers one at a time;
        the pipeline hides the round trips: an import reads back a thousand)."""
        found: dict[str, list[AmiMessage] | None] = {}
        pending = iter(names)

        async def reader() -> None:
            for name in pending:
                found[name] = await read_endpoint(self._session, name)

        readers = [asyncio.create_task(reader()) for _ in range(min(READBACK_PIPELINE, len(names)))]
        try:
            await asyncio.gather(*readers)
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        return found

    async def _roll_back(self, previous: Mapping[Path, bytes | None]) -> None:
        try:
            await asyncio.to_thread(apply_contents, previous, self._journal, like=self.main)
        except FileWriteError as exc:
            log.error("rolling back failed, the files hold the change: %s", exc)
            return
        try:
            await self._reloader.reload()
        except ReloadError as exc:
            log.error("reload after the rollback failed: %s", exc)

    async def _keep_version(
        self, plan: Plan, previous: Mapping[Path, bytes | None], who: Who
    ) -> tuple[int | None, int | None]:
        """Keep the files before and after; (the latest version before this one, this one)."""
        changes = [
            FileChange(str(path), _text(previous.get(path)), _text(content))
            for path, content in plan.files.items()
        ]
        reason = f"{plan.operation} {', '.join(plan.extensions)}".strip()
        try:
            latest = await self._history.queries.config_versions(self.pbx_id, limit=1)
            before = latest.rows[0].id if latest.rows else None
            return before, await self._history.store.add_config_version(
                self.pbx_id, who.name, reason, changes
            )
        except HistoryDatabaseError as exc:
            log.error("the change is applied, but its version could not be kept: %s", exc)
            return None, None

    async def _audit(
        self,
        operation: str,
        subject: str | None,
        who: Who,
        result: AuditResult,
        *,
        diff: str = "",
        detail: str = "",
        versions: tuple[int | None, int | None] = (None, None),
        rolled_back: bool = False,
    ) -> None:
        seconds = time.monotonic() - self._started
        self.attempted.emit(Attempt(operation, result, seconds, rolled_back))
        entry = AuditEntry(
            pbx=self.pbx_id,
            who=who.name,
            role=who.role,
            object_type="endpoint" if operation in ("create", "update", "delete") else "config",
            object_id=subject,
            operation=operation,
            result=result,
            diff=diff,
            detail=detail,
            version_before=versions[0],
            version_after=versions[1],
        )
        try:
            await self._history.store.add_audit(entry)
        except HistoryDatabaseError as exc:
            log.error(
                "audit row not written (%s): %s %s %s", exc, who.name, operation, result.value
            )


def _expected_of(
    expected: Mapping[ObjectKey, Mapping[str, str] | None], plan: Plan, name: str
) -> dict[ObjectKey, Mapping[str, str] | None]:
    """The expectations about endpoint ``name`` and its own auths and AORs (after the
    change)."""
    options = plan.after.endpoint_config(name) or {}
    names = {
        n.strip()
        for field_name in ("auth", "outbound_auth", "aors")
        for n in options.get(field_name, "").split(",")
    }
    keys = [("endpoint", name)] + [(kind, n) for kind in ("auth", "aor") for n in sorted(names)]
    return {key: expected[key] for key in keys if key in expected}


def _names(extensions: list[str]) -> str:
    """Extensions for a log line: a few by name, a batch by count."""
    if len(extensions) <= 5:
        return ", ".join(extensions)
    return f"{len(extensions):,} extensions ({extensions[0]} …)"


def _text(content: bytes | None) -> str | None:
    return None if content is None else content.decode("utf-8", errors="replace")
