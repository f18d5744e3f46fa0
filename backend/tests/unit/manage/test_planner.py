"""Plans from requests, on files in a temp dir: what the candidate must read like, and refusals."""

from __future__ import annotations

import difflib
import random
from pathlib import Path

import pytest

from ispbx.manage.importer import parse_csv
from ispbx.manage.planner import (
    Conflict,
    NotFound,
    Planner,
    Rejected,
    Workspace,
    unified_diff,
)
from ispbx.manage.requests import CreateEndpoint, PatchEndpoint

CONF = """\
[transport-udp]
type = transport
protocol = udp
bind = 127.0.0.1:5060

[ep](!)
type = endpoint
context = from-internal
disallow = all
allow = ulaw

[au](!)
type = auth
auth_type = userpass

[101](ep)
auth = 101
aors = shared
[101](au)
username = 101
password = pw101
[shared]
type = aor
max_contacts = 2

[102](ep)
auth = 102
aors = shared
[102](au)
username = 102
password = pw102
"""


@pytest.fixture
def planner(tmp_path: Path) -> Planner:
    (tmp_path / "pjsip.conf").write_text(CONF)
    return Planner(tmp_path / "pjsip.conf", tmp_path / "pjsip_ispbx.conf")


def workspace(planner: Planner) -> Workspace:
    return Workspace.read(planner.main)


def test_a_create_routes_templates_by_type_and_expects_every_option(planner: Planner) -> None:
    request = CreateEndpoint(
        extension="201", templates=["ep", "au"], codecs=["g722"], max_contacts=1
    )
    plan = planner.create(workspace(planner), request)
    assert set(plan.files) == {planner.main, planner.managed}
    managed = (plan.files[planner.managed] or b"").decode()
    assert "[201](ep)" in managed and "[201](au)" in managed and "[201]\ntype = aor" in managed
    assert plan.password is not None and f"password = {plan.password}" in managed
    expected = plan.expectations()
    assert expected[("endpoint", "201")]["context"] == "from-internal"  # from the template
    assert expected[("endpoint", "201")]["allow"] == "(g722)"
    assert expected[("auth", "201")]["password"] == plan.password
    assert expected[("aor", "201")]["max_contacts"] == "1"


@pytest.mark.parametrize(
    ("request_body", "words"),
    [
        ({"extension": "201", "templates": ["epp"]}, "did you mean ep"),
        ({"extension": "201", "templates": ["transport-udp"]}, "no template named"),
        ({"extension": "201", "codecs": ["ulaw", "ulaw2"]}, "ulaw2"),
        ({"extension": "201", "transport": "transport-tcp"}, "transport-tcp"),
        ({"extension": "201", "options": {"aor": {"max_contacts": "many"}}}, "max_contacts"),
    ],
)
def test_a_bad_create_is_rejected_with_the_field(
    planner: Planner, request_body: dict[str, object], words: str
) -> None:
    with pytest.raises(Rejected) as caught:
        planner.create(workspace(planner), CreateEndpoint.model_validate(request_body))
    assert any(words in e.message or words in map(str, e.where) for e in caught.value.errors)


def test_an_existing_id_of_any_type_is_a_conflict(planner: Planner) -> None:
    with pytest.raises(Conflict, match="aor shared"):
        planner.create(workspace(planner), CreateEndpoint(extension="shared"))


def test_a_patch_of_an_inherited_option_expects_it_and_of_a_removed_one_the_default(
    planner: Planner,
) -> None:
    patch = PatchEndpoint(endpoint={"context": "sales", "allow": None})
    plan = planner.update(workspace(planner), "101", patch)
    expected = plan.expectations()[("endpoint", "101")]
    assert expected == {"context": "sales"}  # allow stays (ulaw from the template) …
    text = (plan.files[planner.main] or b"").decode()
    assert "[ep](!)\ntype = endpoint\ncontext = from-internal" in text  # … templates untouched
    with pytest.raises(NotFound):
        planner.update(workspace(planner), "999", patch)
    with pytest.raises(Rejected, match="takes one value"):
        planner.update(workspace(planner), "101", PatchEndpoint(endpoint={"context": ["a", "b"]}))


def test_a_delete_keeps_what_others_use(planner: Planner) -> None:
    plan = planner.delete(workspace(planner), "101")
    assert plan.kept == ["aor shared"]
    text = (plan.files[planner.main] or b"").decode()
    assert "[101]" not in text and "[shared]" in text and "[102](ep)" in text
    assert plan.expectations() == {("endpoint", "101"): None}


def test_an_import_blames_each_bad_row_and_repeated_extensions(planner: Planner) -> None:
    rows = parse_csv("extension,max_contacts\n301,1\n302,x\n301,1\n101,1\n")
    with pytest.raises(Rejected) as caught:
        planner.import_rows(workspace(planner), rows)
    where = sorted({e.where[1] for e in caught.value.errors})
    assert where == ["line 3", "line 4", "line 5"]


def test_a_revert_to_what_the_files_already_hold_is_a_conflict(planner: Planner) -> None:
    ws = workspace(planner)
    with pytest.raises(Conflict):
        planner.revert(ws, {planner.main: planner.main.read_bytes()})


def test_a_diff_in_a_long_file_numbers_its_hunks_as_in_the_whole_file() -> None:
    before = [f"line {n}\n" for n in range(20_000)]
    after = [*before[:9_000], "changed\n", *before[9_001:15_000], *before[15_002:]]
    whole = "".join(difflib.unified_diff(before, after, fromfile="a/p.conf", tofile="b/p.conf"))
    ours = unified_diff(Path("/p.conf"), "".join(before).encode(), "".join(after).encode())
    assert ours.splitlines()[2:] == whole.splitlines()[2:]  # same hunks, same numbers
    assert "@@ -8998,7 +8998,7 @@" in ours


def test_a_diff_applied_to_the_old_lines_gives_the_new_ones() -> None:
    rng = random.Random(7)
    for _ in range(300):
        old = [f"l{rng.randint(0, 4)}\n" for _ in range(rng.randint(0, 30))]
        new = list(old)
        for _ in range(rng.randint(1, 3)):
            at = rng.randint(0, len(new))
            if rng.random() < 0.5 or not new:
                new.insert(at, f"n{rng.randint(0, 4)}\n")
            else:
                del new[min(at, len(new) - 1)]
        text = unified_diff(Path("/p.conf"), "".join(old).encode(), "".join(new).encode())
        assert apply_diff(old, text) == new, text


def apply_diff(old: list[str], text: str) -> list[str]:
    result: list[str] = []
    at = 0
    for line in text.splitlines(keepends=True)[2:]:
        if line.startswith("@@"):
            numbers = line.split()[1][1:].split(",")
            start, length = int(numbers[0]), int(numbers[1]) if len(numbers) > 1 else 1
            first = start - 1 if length else start
            result += old[at:first]
            at = first
        elif line.startswith(" "):
            assert old[at] == line[1:]
            result.append(line[1:])
            at += 1
        elif line.startswith("-"):
            assert old[at] == line[1:]
            at += 1
        elif line.startswith("+"):
            result.append(line[1:])
    return result + old[at:]
