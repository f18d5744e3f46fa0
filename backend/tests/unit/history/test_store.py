"""The audit trail and config versions (SQLite here; PostgreSQL in the integration tests)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ispbx.history import (
    AuditEntry,
    AuditResult,
    Database,
    FileChange,
    HistoryQueries,
    HistoryStore,
    InvalidQuery,
)
from tests.unit.history.fixtures import T0

S = timedelta(seconds=1)


def entry(n: int, **fields: object) -> AuditEntry:
    values: dict[str, object] = {
        "pbx": "pbx",
        "who": "alice",
        "role": "admin",
        "object_type": "endpoint",
        "object_id": "101",
        "operation": "update",
        "result": AuditResult.APPLIED,
        "diff": f"-context = a{n}\n+context = b{n}\n",
        "detail": "",
        "occurred_at": T0 + n * S,
    }
    values.update(fields)
    return AuditEntry(**values)  # type: ignore[arg-type]


class TestAudit:
    async def test_audit_rows_are_listed_newest_first_with_every_field(
        self, database: Database
    ) -> None:
        store = HistoryStore(database)
        first = await store.add_audit(entry(1, version_before=3, version_after=4))
        second = await store.add_audit(
            entry(2, result="rolled_back", detail="read-back differed: context")
        )
        assert second > first
        rows = (await HistoryQueries(database).audit()).rows
        assert [row.id for row in rows] == [second, first]
        assert rows[0].result == AuditResult.ROLLED_BACK
        assert rows[0].detail == "read-back differed: context"
        assert (rows[1].version_before, rows[1].version_after) == (3, 4)
        assert rows[1].as_dict()["occurred_at"] == "2025-03-01T12:00:01.000000Z"
        assert rows[1].diff == "-context = a1\n+context = b1\n"

    async def test_audit_filters(self, database: Database) -> None:
        store = HistoryStore(database)
        await store.add_audit(entry(1))
        await store.add_audit(entry(2, who="bob", result=AuditResult.REJECTED))
        await store.add_audit(entry(3, object_type="auth", object_id="101-auth"))
        await store.add_audit(entry(4, pbx="other"))
        q = HistoryQueries(database)
        assert [r.who for r in (await q.audit(who="bob")).rows] == ["bob"]
        assert len((await q.audit("pbx", result="rejected")).rows) == 1
        assert [r.object_id for r in (await q.audit(object_type="auth")).rows] == ["101-auth"]
        assert len((await q.audit("pbx", since=T0 + 2 * S)).rows) == 2
        assert len((await q.audit()).rows) == 4
        with pytest.raises(InvalidQuery, match="unknown audit result"):
            await q.audit(result="maybe")

    async def test_audit_pages_with_a_cursor(self, database: Database) -> None:
        store = HistoryStore(database)
        for n in range(5):
            await store.add_audit(entry(n % 2))  # equal times: the id breaks ties
        q = HistoryQueries(database)
        first = await q.audit(limit=3)
        second = await q.audit(limit=3, cursor=first.next_cursor)
        ids = [r.id for r in first.rows + second.rows]
        assert len(set(ids)) == 5
        assert second.next_cursor is None

    async def test_secrets_in_diffs_and_details_are_masked(self, database: Database) -> None:
        await HistoryStore(database).add_audit(
            entry(
                1, diff="-password = old-secret\n+password = new-secret\n", detail="md5_cred = abc"
            )
        )
        row = (await HistoryQueries(database).audit()).rows[0]
        assert "old-secret" not in row.diff
        assert "new-secret" not in row.diff
        assert row.diff == "-password = ********\n+password = ********\n"
        assert row.detail == "md5_cred = ********"


class TestConfigVersions:
    async def test_a_version_keeps_every_file_before_and_after(self, database: Database) -> None:
        store = HistoryStore(database)
        version = await store.add_config_version(
            "pbx",
            "alice",
            "add extension 105",
            [
                FileChange("pjsip.conf", "[global]\n", "[global]\n#include pjsip_ispbx.conf\n"),
                FileChange("pjsip_ispbx.conf", None, "[105]\ntype=auth\npassword=s3cret\n"),
            ],
            created_at=T0,
        )
        found = await HistoryQueries(database).config_version("pbx", version)
        assert found is not None
        assert found.author == "alice"
        assert found.reason == "add extension 105"
        assert found.created_at == T0
        assert found.paths == ("pjsip.conf", "pjsip_ispbx.conf")
        assert found.files[1].before is None
        assert found.files[1].after == "[105]\ntype=auth\npassword=s3cret\n"  # kept for a revert
        diff = found.diff()
        assert "+#include pjsip_ispbx.conf\n" in diff
        assert "--- /dev/null\n+++ b/pjsip_ispbx.conf\n" in diff
        assert "s3cret" not in diff
        assert "+password=********\n" in diff
        assert "s3cret" in found.diff(mask=False)
        assert "s3cret" not in str(found.as_dict())

    async def test_a_changed_password_shows_as_a_changed_line(self, database: Database) -> None:
        store = HistoryStore(database)
        version = await store.add_config_version(
            "pbx", "alice", "reset", [FileChange("pjsip.conf", "password=a\n", "password=b\n")]
        )
        found = await HistoryQueries(database).config_version("pbx", version)
        assert found is not None
        assert "-password=********\n+password=********\n" in found.diff()

    async def test_versions_are_listed_newest_first_with_paths_only(
        self, database: Database
    ) -> None:
        store = HistoryStore(database)
        ids = [
            await store.add_config_version(
                "pbx",
                "alice",
                f"change {n}",
                [FileChange(f"f{n}.conf", "a", "b")],
                created_at=T0 + n * S,
            )
            for n in range(3)
        ]
        await store.add_config_version("other", "bob", "elsewhere", [], created_at=T0)
        q = HistoryQueries(database)
        first = await q.config_versions("pbx", limit=2)
        assert [v.id for v in first.rows] == [ids[2], ids[1]]
        assert first.rows[0].paths == ("f2.conf",)
        assert first.rows[0].as_dict()["created_at"] == "2025-03-01T12:00:02.000000Z"
        second = await q.config_versions("pbx", limit=2, cursor=first.next_cursor)
        assert [v.id for v in second.rows] == [ids[0]]
        assert second.next_cursor is None

    async def test_an_unknown_or_other_pbx_version_is_none(self, database: Database) -> None:
        version = await HistoryStore(database).add_config_version("other", "bob", "x", [])
        q = HistoryQueries(database)
        assert await q.config_version("pbx", version) is None
        assert await q.config_version("pbx", 12345) is None

    async def test_a_file_listed_twice_is_refused(self, database: Database) -> None:
        with pytest.raises(ValueError, match="once"):
            await HistoryStore(database).add_config_version(
                "pbx", "a", "r", [FileChange("x", "", "1"), FileChange("x", "", "2")]
            )
