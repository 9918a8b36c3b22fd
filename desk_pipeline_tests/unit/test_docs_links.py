"""The README and docs/ link only to files the repository has."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) with a relative target; web links and in-page anchors are not files.
LINK = re.compile(r"\[[^\]]*\]\((?!https?://|#)([^)#\s]+)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_relative_link_names_a_file_of_the_repository(document):
    targets = LINK.findall(document.read_text(encoding="utf-8"))
    missing = [t for t in targets if not (document.parent / t).exists()]
    assert missing == [], f"{document.name} links to {missing}"


def test_no_document_sends_the_reader_to_a_file_outside_the_repository():
    # ARCHITECTURE.md is the product owners' brief, not part of the repository.
    for document in DOCUMENTS:
        assert "ARCHITECTURE.md" not in document.read_text(encoding="utf-8"), document.name
