"""The documents a reader follows: every relative link in README.md, docs/ and experiments/
resolves to a file of the repository (and a #anchor to a heading of it), none points outside
the repository, and the README stays a front door (at most 300 lines)."""
import glob
import os
import re

import pytest

from conftest import REPO

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def documents():
    paths = [os.path.join(REPO, "README.md"), *glob.glob(os.path.join(REPO, "docs", "*.md")),
             *glob.glob(os.path.join(REPO, "experiments", "**", "*.md"), recursive=True),
             *glob.glob(os.path.join(REPO, "tests", "README.md"))]
    return sorted(os.path.relpath(p, REPO) for p in paths)


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation but - and _ dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, flags=re.M)}


def links(path):
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
    for m in LINK.finditer(text):
        yield m.group(1) or m.group(2)


@pytest.mark.parametrize("doc", documents())
def test_every_link_resolves(doc):
    bad = []
    for target in links(doc):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(REPO, os.path.dirname(doc), path)) if path else os.path.join(REPO, doc)
        if not full.startswith(REPO + os.sep) and full != REPO:
            bad.append(f"{target} (outside the repository)")
        elif not os.path.exists(full):
            bad.append(f"{target} (no such file)")
        elif anchor and full.endswith(".md") and anchor not in anchors(full):
            bad.append(f"{target} (no heading #{anchor})")
    assert not bad, f"{doc}: " + "; ".join(bad)


def test_the_readme_is_a_front_door():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move topics to docs/"
