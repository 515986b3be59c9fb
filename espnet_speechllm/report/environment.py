"""The "Environments" lines of RESULTS.md: date, versions of Python and the key packages, sclite, git hash.

Only read-only commands are run, and no host name is written.
"""
import datetime
import importlib.metadata
import platform
import re
import subprocess
from pathlib import Path
from typing import List, Optional, Tuple

from espnet_speechllm.scoring.sclite import find_sclite

_PACKAGES = ("torch", "transformers", "peft", "espnet", "jiwer")


def _run(cmd: List[str], cwd: Path) -> Optional[str]:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def environment(cwd: Path) -> List[Tuple[str, str]]:
    """Versions and git hash (read-only git commands); no host names."""
    rows = [
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("python version", platform.python_version()),
        ("platform", f"{platform.system()} {platform.machine()}"),
    ]
    for pkg in _PACKAGES:
        try:
            rows.append((f"{pkg} version", importlib.metadata.version(pkg)))
        except importlib.metadata.PackageNotFoundError:
            rows.append((f"{pkg} version", "not installed"))
    exe = find_sclite()
    if exe:
        # sclite prints its usage (with the version line) on stderr and exits 1 without arguments.
        proc = subprocess.run([exe], capture_output=True, text=True)
        m = re.search(r"sclite Version: [\d.]+, SCTK Version: [\d.]+", proc.stdout + proc.stderr)
        rows.append(("sclite", m.group(0) if m else exe))
    git_hash = _run(["git", "rev-parse", "--short", "HEAD"], cwd)
    rows.append(("git hash", git_hash or "unknown (not a git checkout, or no commit yet)"))
    if git_hash:
        commit_date = _run(["git", "log", "-1", "--format=%cd"], cwd)
        if commit_date:
            rows.append(("commit date", commit_date))
    return rows
