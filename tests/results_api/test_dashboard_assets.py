"""The dashboard's files: the bundled uPlot is the noted release, and nothing comes from a CDN."""

from __future__ import annotations

import hashlib
import re

from tests.conftest import REPO

STATIC = REPO / "src" / "results_api" / "static"
VENDOR = STATIC / "vendor" / "uplot"


def test_the_bundled_uplot_files_are_the_release_named_in_version_md():
    note = (VENDOR / "VERSION.md").read_text()
    listed = dict(re.findall(r"^\| (\S+) \| `package/[^`]+` \| ([0-9a-f]{64}) \|$", note, re.MULTILINE))
    assert set(listed) == {"uPlot.iife.min.js", "uPlot.min.css"}
    for name, digest in listed.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert "# uPlot 1.6.32" in note
    assert (
        (VENDOR / "uPlot.iife.min.js")
        .read_text()
        .startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    )
    assert "MIT License" in (VENDOR / "LICENSE").read_text()


def test_the_page_loads_only_relative_same_origin_files_that_exist():
    page = (STATIC / "dashboard.html").read_text()
    references = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert references, "no assets referenced?"
    for reference in references:
        assert not re.match(r"^([a-z]+:)?//", reference), f"absolute URL {reference}"
        assert not reference.startswith("/"), f"{reference} would break under a base_url path"
        if reference.startswith("static/"):
            assert (STATIC / reference.removeprefix("static/")).is_file(), reference
    script = (STATIC / "dashboard.js").read_text()
    assert not re.search(r"https?://", script)
    assert "fetch(path" in script and "`api/" in script  # relative API calls
