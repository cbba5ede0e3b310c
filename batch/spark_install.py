"""What a Spark command needs, installed on its first use: pyspark (the ``spark`` extra, as
pyproject.toml declares it, pinned by requirements.lock in a checkout) and the jars of
``infra/spark/jars.sh`` (delta-spark, hadoop-aws and the AWS SDK bundle, ~560 MB). ``make up``
installs neither: the running pipeline never uses Spark.

Each step says what it installs and why before it starts, so a first ``pinpipe query --engine
spark`` that takes a minute is not a hang.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCK = REPO_ROOT / "requirements.lock"
JARS_SCRIPT = REPO_ROOT / "infra" / "spark" / "jars.sh"
EXTRA = "spark"


class SparkUnavailable(RuntimeError):
    """Spark could not be installed; the message says what to do."""


def extra_requirements(distribution: str = "pinpipe", extra: str = EXTRA) -> list[str]:
    """The requirements of ``distribution``'s ``extra``, from its installed metadata (what
    pyproject.toml declares), without their ``extra == …`` markers."""
    marker = re.compile(rf"""extra\s*==\s*["']{re.escape(extra)}["']""")
    found = []
    for requirement in metadata.requires(distribution) or []:
        spec, _, condition = requirement.partition(";")
        if marker.search(condition):
            found.append(spec.strip())
    return found


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def ensure_pyspark(say: Callable[[str], None] = _say) -> None:
    """Install pyspark into this interpreter's environment unless it is there."""
    if importlib.util.find_spec("pyspark") is not None:
        return
    requirements = extra_requirements()
    if not requirements:
        raise SparkUnavailable("Spark needs pyspark: pip install 'pinpipe[spark]'")
    command = [sys.executable, "-m", "pip", "install", "-q"]
    if LOCK.is_file():
        command += ["-c", str(LOCK)]
    say(
        f"spark: first use, installing {', '.join(requirements)} (~450 MB, once; "
        "`make up` leaves Spark out) …"
    )
    if subprocess.run([*command, *requirements], check=False).returncode != 0:
        raise SparkUnavailable(f"installing {', '.join(requirements)} failed (see pip above)")
    importlib.invalidate_caches()
    say("spark: pyspark installed")


def ensure_jars(jars_dir: Path) -> None:
    """Resolve the jars into ``jars_dir`` unless they are there at the versions of
    ``infra/spark/jars.sh`` (which says what it fetches, and is quick when nothing changed).
    Outside a checkout (an image) the jars must be present."""
    if not JARS_SCRIPT.is_file():
        if not any(jars_dir.glob("delta-spark_*.jar")):
            raise SparkUnavailable(
                f"no delta-spark jar in {jars_dir}: set PINPIPE_SPARK_JARS_DIR to the jars of "
                "infra/spark/jars.sh"
            )
        return
    environment = {**os.environ, "SPARK_JARS_DIR": str(jars_dir)}
    if subprocess.run(["bash", str(JARS_SCRIPT)], env=environment, check=False).returncode:
        raise SparkUnavailable(f"{JARS_SCRIPT} failed (see above)")
