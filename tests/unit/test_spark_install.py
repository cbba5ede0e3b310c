"""What a first Spark command installs: the `spark` extra as pyproject.toml declares it."""

from __future__ import annotations

import tomllib

from batch.spark_install import REPO_ROOT, extra_requirements


def _declared(extra: str) -> list[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return [line.replace(" ", "") for line in project["optional-dependencies"][extra]]


def test_the_spark_extra_is_read_from_the_installed_metadata() -> None:
    found = extra_requirements(extra="spark")
    assert [name for name in found if name.startswith("pyspark")], found
    declared = {spec.split(">")[0].split("<")[0] for spec in _declared("spark")}
    assert {spec.split(">")[0].split("<")[0] for spec in found} == declared


def test_an_extra_without_requirements_reads_empty() -> None:
    assert extra_requirements(extra="no-such-extra") == []
    assert "pytest" not in " ".join(extra_requirements(extra="spark"))
