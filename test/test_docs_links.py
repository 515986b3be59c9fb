"""README.md and docs/*.md: every relative link reaches an existing file (and, with an anchor into a markdown
file, one of its headings), and the README links every page under docs/."""
import glob
import os
import re

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _pages():
    return [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _links(path):
    """Link targets outside code blocks."""
    return LINK.findall(FENCE.sub("", _read(path)))


def _anchors(path):
    """GitHub's anchors of a markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+\s+(.*?)\s*$", FENCE.sub("", _read(path)), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_relative_links_reach_existing_files_and_headings():
    bad = []
    for page in _pages():
        for target in _links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
            rel = os.path.relpath(page, REPO)
            if not os.path.exists(dest):
                bad.append(f"{rel}: {target} (no such file)")
            elif anchor and dest.endswith(".md") and anchor not in _anchors(dest):
                bad.append(f"{rel}: {target} (no such heading)")
    assert bad == []


def test_readme_links_every_docs_page():
    linked = {os.path.normpath(t.partition("#")[0]) for t in _links(os.path.join(REPO, "README.md"))}
    pages = {os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "*.md"))}
    assert len(pages) >= 9 and sorted(pages - linked) == []
