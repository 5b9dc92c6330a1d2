"""Shared by the torchrun tests (``torchrun_support`` fixture): the torchrun executable, and an environment in
which every file a worker lands (atomic writes end in ``os.replace``) is logged with the writer's RANK."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")

SITECUSTOMIZE = """
import os
_replace = os.replace
def _logged_replace(src, dst, *a, **k):
    with open(os.environ["WRITE_LOG"], "a") as f:
        f.write(f"{os.environ.get('RANK', '-')} {os.fspath(dst)}\\n")
    return _replace(src, dst, *a, **k)
os.replace = _logged_replace
"""


def write_logging_env(root: Path) -> dict:
    """The current environment with one thread per worker and ``root/hook/sitecustomize.py`` first on the
    path, logging to ``root/writes.log``."""
    hook = root / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ, OMP_NUM_THREADS="1", WRITE_LOG=str(root / "writes.log"))
    env["PYTHONPATH"] = os.pathsep.join([str(hook)] + [p for p in [env.get("PYTHONPATH", "")] if p])
    return env


def writes(root: Path) -> list:
    """``[(rank, destination path), ...]`` logged so far under ``root`` (rank ``-``: not a torchrun worker)."""
    log = root / "writes.log"
    return [tuple(line.split(" ", 1)) for line in log.read_text().splitlines()] if log.exists() else []
