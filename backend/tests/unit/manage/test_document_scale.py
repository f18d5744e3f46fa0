"""Scale: a 10,000-endpoint file set loads, takes an edit and renders well within a second
here (`python -m bench.document_bench` reports the real figures; the target is 200 ms)."""

from __future__ import annotations

import time

from bench.document_bench import MAIN, file_set, reader, run

from ispbx.manage.document import ConfigDocument


def test_ten_thousand_endpoints_load_edit_and_render_quickly() -> None:
    files = file_set()
    start = time.process_time()
    document = ConfigDocument.load(MAIN, read=reader(files), glob=lambda pattern: [])
    document.set_option("endpoint", "7777", "context", "elsewhere")
    changed = document.changed_files()
    elapsed = time.process_time() - start
    assert len(changed) == 1
    assert b"[7777](ep)\nauth = 7777\n" in next(iter(changed.values()))
    assert document.get("endpoint", "7777").options["context"] == "elsewhere"
    assert elapsed < 1.0


def test_benchmark_reports_its_figures() -> None:
    lines = run(runs=1)
    assert lines[0].startswith("document model: 10,000 endpoints in 5 files")
    assert any("load + edit + render" in line for line in lines)
