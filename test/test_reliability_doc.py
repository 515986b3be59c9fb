"""docs/reliability.md: every row names a test, and every test it names exists."""
import os
import re

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def test_every_row_is_backed_by_an_existing_test():
    with open(os.path.join(REPO, "docs", "reliability.md"), encoding="utf-8") as f:
        rows = [line for line in f if line.startswith("| ") and not line.startswith(("| tried", "|---"))]
    assert len(rows) >= 20
    for row in rows:
        refs = re.findall(r"`(test/[\w/]+\.py)(?:::(\w+))?`", row) or (["same"] if "| same test |" in row else [])
        assert refs, f"no test named in: {row}"
        for ref in refs:
            if ref == "same":
                continue
            path, name = ref
            with open(os.path.join(REPO, path), encoding="utf-8") as f:
                source = f.read()
            assert not name or f"def {name}(" in source, f"{path}::{name} not found"
