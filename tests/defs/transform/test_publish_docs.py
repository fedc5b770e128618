"""The docs site is copied safely while another run copies it too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ps_pipelines.defs.transform import publish
from ps_pipelines.defs.transform.publish import DOCS_FILES, copy_docs


def docs_site(path: Path, text: str) -> Path:
    path.mkdir(parents=True)
    for name in DOCS_FILES:
        (path / name).write_text(f"{text} {name}")
    return path


def test_a_second_run_copying_the_docs_between_stage_and_replace_does_not_break_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = docs_site(tmp_path / "first", "first"), docs_site(tmp_path / "second", "second")
    destination = tmp_path / "site"
    replace, interleaved = os.replace, []

    def replace_after_another_run_copies(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        if not interleaved:  # the other run stages and replaces between our stage and replace
            interleaved.append(dst)
            copy_docs(second, destination)
        replace(src, dst)

    monkeypatch.setattr(publish.os, "replace", replace_after_another_run_copies)
    copy_docs(first, destination)

    # Every file is one run's complete copy, the first run (the last to replace) won, and no
    # staged file is left behind.
    assert {p.name: p.read_text() for p in destination.iterdir()} == {
        name: f"first {name}" for name in DOCS_FILES}
