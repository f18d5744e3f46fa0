"""Hypothesis strategies: messy config file sets the reader accepts.

Sections with templates (typed and untyped, `(!,tpl)` chains), objects sharing names across
types, `(+)` and `(+type=...)` continuations, option lines in every spelling (`=`, `=>`, `+=`,
tabs, case, `\\;`), inline comments, `;-- --;` block comments (inline and over several lines,
hiding fake sections), rulers, lines without `=`, NULs and invalid UTF-8 in comments, CRLF per
line, a BOM, a missing final newline, and includes (quoted, `#tryinclude`, globs, braces,
nested includes relative to the main file's directory)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

OBJECT_NAMES = ["101", "102", "alice", "Bob", "trunk-1"]
KINDS = ["endpoint", "auth", "aor"]
KEYS = {
    "endpoint": ["context", "language", "callerid", "set_var", "allow", "disallow", "Language"],
    "auth": ["username", "password", "auth_type"],
    "aor": ["max_contacts", "contact", "qualify_frequency"],
}
VALUES = ["a", "b c", "x;y", "<1>", "ulaw", "gsm,alaw", "all", "A=1", "1", "with\\back", "é"]
COMMENTS = [
    "; a comment",
    ";------------------------------ ruler",
    ";-- one-line block --;",
    "; [fake](section)",
    ";;",
    "; bad utf-8 \udcff\udcc3 here",
    "; nul \x00 in a comment",
]
BLOCKS = [
    [";-- a block", "[ghost]", "type=endpoint", "--;"],
    [";-- nested ;-- inner --; still", "context=hidden --;"],
]


@dataclass
class Section:
    header: str
    lines: list[str] = field(default_factory=list)


@dataclass
class Layout:
    sections: list[Section]
    kinds: dict[str, str]  # template name -> its type ("" for none)


def _option_line(draw: st.DrawFn, key: str, value: str) -> str:
    written = value.replace(";", "\\;")
    spelling = draw(
        st.sampled_from(["{k}={v}", "{k} = {v}", "{k} => {v}", "\t{k}\t=\t{v}", "{k}  =  {v}"])
    )
    line = spelling.format(k=key, v=written)
    if draw(st.integers(0, 5)) == 0:
        line += draw(st.sampled_from([" ; note", "   ;-- inline --;", "\t; why"]))
    return line


def _options(draw: st.DrawFn, kind: str, *, own_type: bool) -> list[str]:
    lines = [_option_line(draw, "type", kind)] if own_type else []
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(KEYS[kind]))
        lines.append(_option_line(draw, key, draw(st.sampled_from(VALUES))))
        if draw(st.integers(0, 7)) == 0:
            lines.append(draw(st.sampled_from([*COMMENTS, "no equals sign here", ""])))
    if draw(st.integers(0, 9)) == 0:
        lines.append(f"{draw(st.sampled_from(KEYS[kind]))} += more")
    return lines


@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    sections: list[Section] = []
    kinds: dict[str, str] = {}
    for name in draw(st.lists(st.sampled_from(["tpl-a", "tpl-b", "tpl-c"]), unique=True)):
        kind = draw(st.sampled_from(["", *KINDS]))
        parent = draw(st.sampled_from([None, *(t for t, k in kinds.items() if not k or k == kind)]))
        header = f"[{name}](!,{parent})" if parent else f"[{name}](!)"
        kinds[name] = kind or (kinds.get(parent, "") if parent else "")
        sections.append(Section(header, _options(draw, kind or "endpoint", own_type=bool(kind))))
    used: set[tuple[str, str]] = set()
    for _ in range(draw(st.integers(1, 7))):
        name, kind = draw(st.sampled_from(OBJECT_NAMES)), draw(st.sampled_from(KINDS))
        if (kind, name) in used:
            continue
        used.add((kind, name))
        fitting = [t for t, k in kinds.items() if k in ("", kind)]
        chosen = (
            draw(st.lists(st.sampled_from(fitting), unique=True, max_size=2)) if fitting else []
        )
        typed = any(kinds[t] == kind for t in chosen)
        own_type = not typed or draw(st.booleans())
        header = f"[{name}]({','.join(chosen)})" if chosen else f"[{name}]"
        sections.append(Section(header, _options(draw, kind, own_type=own_type)))
        if draw(st.integers(0, 3)) == 0:
            plus = draw(st.sampled_from(["(+)", f"(+type={kind})"]))
            later = Section(f"[{name}]{plus}", _options(draw, kind, own_type=False))
            sections.append(later)
    return Layout(sections, kinds)


def _decorated(draw: st.DrawFn, section: Section) -> list[str]:
    lines: list[str] = []
    if draw(st.integers(0, 3)) == 0:
        lines.append(draw(st.sampled_from(COMMENTS)))
    header = section.header
    if draw(st.integers(0, 5)) == 0:
        header += draw(st.sampled_from([" ; about it", "\t"]))
    lines.append(header)
    for line in section.lines:
        lines.append(line)
        if draw(st.integers(0, 12)) == 0:
            lines.extend(draw(st.sampled_from(BLOCKS)))
    if draw(st.booleans()):
        lines.append("")
    return lines


def _text(draw: st.DrawFn, lines: list[str], *, bom: bool) -> bytes:
    out = "\ufeff" if bom else ""
    for index, line in enumerate(lines):
        last = index == len(lines) - 1
        ending = draw(st.sampled_from(["\n", "\n", "\r\n"]))
        out += line + ("" if last and draw(st.integers(0, 4)) == 0 else ending)
    return out.encode("utf-8", "surrogateescape")


INCLUDE_FORMS = [
    ("#include inc1.conf", ["inc1.conf"]),
    ('#include "inc1.conf"', ["inc1.conf"]),
    ("#tryinclude inc1.conf", ["inc1.conf"]),
    ("#include pjsip.d/*.conf", ["pjsip.d/10-a.conf", "pjsip.d/20-b.conf"]),
    ("#include {inc1,inc2}.conf", ["inc1.conf", "inc2.conf"]),
]


@st.composite
def file_sets(draw: st.DrawFn) -> dict[str, bytes]:
    """A main pjsip.conf and the files it includes, by name relative to the config dir."""
    layout = draw(layouts())
    parts = [_decorated(draw, s) for s in layout.sections]
    directive, names = draw(st.sampled_from(INCLUDE_FORMS))
    cut = draw(st.integers(0, len(parts)))
    included = parts[cut:]
    files: dict[str, bytes] = {}
    main_lines = [line for part in parts[:cut] for line in part]
    if not names or not included:
        main_lines += [line for part in included for line in part]
        included = []
    else:
        main_lines.append(directive)
    if draw(st.booleans()):
        main_lines.insert(0, draw(st.sampled_from(COMMENTS)))
    files["pjsip.conf"] = _text(draw, main_lines, bom=draw(st.integers(0, 4)) == 0)
    share = max(1, len(included) // len(names))
    for index, name in enumerate(names):
        chunk = (
            included[index * share :]
            if index == len(names) - 1
            else included[index * share : (index + 1) * share]
        )
        lines = [line for part in chunk for line in part]
        if index == 0 and name == "inc1.conf" and draw(st.integers(0, 3)) == 0:
            lines.append("#include nested/inner.conf")  # relative to the main file's directory
            files["nested/inner.conf"] = _text(
                draw, ["; nested", "[nested-aor]", "type=aor"], bom=False
            )
        files[name] = _text(draw, lines, bom=draw(st.integers(0, 6)) == 0)
    return files
