"""Reading a timeline's HTML page in tests: the attempts it draws (classes, job, tooltip) and what it fetches."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """What a timeline page holds: attempt groups with their classes, titles and texts, and external refs."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts: list[dict[str, Any]] = []
        self.external: list[str] = []
        self.tags: list[str] = []
        self._in: dict[str, Any] | None = None
        self._title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        for key in ("src", "href"):
            if found.get(key):
                self.external.append(str(found[key]))
        if tag == "link":
            self.external.append(str(found))
        if tag == "g" and "attempt" in (found.get("class") or "").split():
            self._in = {"classes": (found["class"] or "").split(), "job": found["data-job"]}
            self._in["title"] = ""
            self.attempts.append(self._in)
        self._title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        if tag == "g":
            self._in = None
        self._title = False

    def handle_data(self, data: str) -> None:
        if self._in is not None and self._title:
            self._in["title"] += data


def parse(html: str) -> Page:
    """The attempts and external references of a timeline page."""
    page = Page()
    page.feed(html)
    return page
