"""Named, separately generated sections of RESULTS.md.

Stage 13 (make_report) rewrites RESULTS.md as a whole; other tools (the ablation runner) own a section
marked ``<!-- NAME:begin -->`` ... ``<!-- NAME:end -->``. Each writer replaces only what it owns, so
rerunning one never erases the other's tables.
"""
import re
from pathlib import Path
from typing import Dict

_SECTION = re.compile(r"<!-- (\w+):begin -->\n.*?<!-- \1:end -->\n?", re.S)


def _block(name: str, text: str) -> str:
    return f"<!-- {name}:begin -->\n{text.rstrip()}\n<!-- {name}:end -->\n"


def read_sections(path: Path) -> Dict[str, str]:
    """``{name: whole marked block}`` of an existing file (empty when there is none)."""
    if not path.is_file():
        return {}
    return {m.group(1): m.group(0) for m in _SECTION.finditer(path.read_text(encoding="utf-8"))}


def replace_section(path: Path, name: str, text: str) -> None:
    """Put ``text`` into section ``name`` of ``path``: replaced where it is, else appended."""
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    block = _block(name, text)
    if name in read_sections(path):
        new = _SECTION.sub(lambda m: block if m.group(1) == name else m.group(0), old)
    else:
        new = old.rstrip() + ("\n\n" if old.strip() else "") + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")


def write_keeping_sections(path: Path, text: str) -> None:
    """Write ``text`` as the new content of ``path``, then re-append the marked sections it had."""
    kept = [block for name, block in read_sections(path).items() if f"<!-- {name}:begin -->" not in text]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip() + "\n" + "".join("\n" + b.rstrip() + "\n" for b in kept), encoding="utf-8")
