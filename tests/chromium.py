"""Open a local HTML file in headless Chromium and report what happened.

:func:`open_page` runs ``chromium --headless`` on ``file://PATH#HASH`` and returns a
:class:`PageVisit`:

* ``dom``: the document after its scripts ran (``--dump-dom``), parsed into
  :class:`Element` trees by :func:`parse` (html.parser: no third-party parser needed);
* ``console``: every console message the page produced (``--enable-logging=stderr`` prints
  them as ``...:CONSOLE(line)] "message", source: ...``), uncaught script errors included;
* ``requests``: every URL the *page* asked the network stack for, from Chromium's net log
  (``--log-net-log``): the URL_REQUEST_START_JOB events whose network isolation key is the
  file's (``file://``).  The browser's own background traffic (its time, account and
  dictionary fetches) has another key and is not counted.  A file:// document is not loaded
  through the network stack, so a self-contained page makes no request at all.  Host
  resolution is mapped to nothing (``--host-resolver-rules``), so that a leaking page's request
  fails at once instead of leaving the machine.

A screenshot of the window is written where ``screenshot`` says.  Chromium is required: it
is looked up as ``chromium`` (Debian's package, which .ci/run installs) or
``chromium-browser``; the caller fails when it is absent.
"""
from __future__ import annotations

import dataclasses
import html.parser
import json
import pathlib
import re
import shutil
import subprocess

__all__ = ["chromium_path", "open_page", "PageVisit", "Element", "parse"]

_CONSOLE = re.compile(r":CONSOLE(?:\(\d+\))?\] (.*)$|:CONSOLE:\d+\] (.*)$")


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclasses.dataclass
class Element:
    tag: str
    attributes: dict
    children: list
    text: str = ""

    def iter(self):
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag=None, **attributes):
        """Descendants (and self) with ``tag`` whose attributes hold the given values; ``class_``
        matches one class among the element's classes."""
        wanted_class = attributes.pop("class_", None)
        for element in self.iter():
            if tag is not None and element.tag != tag:
                continue
            if wanted_class is not None and wanted_class not in element.attributes.get("class", "").split():
                continue
            if all(element.attributes.get(key) == value for key, value in attributes.items()):
                yield element

    def all_text(self) -> str:
        return self.text + "".join(child.all_text() for child in self.children)


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _TreeBuilder(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, [])
        self.stack = [self.root]

    def handle_starttag(self, tag, attributes):
        element = Element(tag, {key: (value if value is not None else "") for key, value in attributes}, [])
        self.stack[-1].children.append(element)
        if tag not in _VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag, attributes):
        self.stack[-1].children.append(Element(tag, dict(attributes), []))

    def handle_endtag(self, tag):
        for index in range(len(self.stack) - 1, 0, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(Element("#text", {}, [], data))


def parse(markup: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(markup)
    builder.close()
    return builder.root


@dataclasses.dataclass
class PageVisit:
    markup: str
    dom: Element
    console: list
    requests: list


def _page_requests(net_log: pathlib.Path) -> list:
    log = json.loads(net_log.read_text())
    names = {value: key for key, value in log["constants"]["logEventTypes"].items()}
    found = []
    for event in log["events"]:
        parameters = event.get("params") or {}
        if names.get(event["type"]) == "URL_REQUEST_START_JOB" and "file://" in parameters.get(
                "network_isolation_key", ""):
            found.append(parameters.get("url"))
    return found


def open_page(path, work_dir, *, fragment="", screenshot=None, window=(1400, 2400), timeout=120) -> PageVisit:
    """Open ``path`` (``#fragment`` appended) in headless Chromium; see the module docstring."""
    browser = chromium_path()
    if browser is None:
        raise RuntimeError("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    work_dir = pathlib.Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    url = pathlib.Path(path).resolve().as_uri() + (f"#{fragment}" if fragment else "")
    net_log = work_dir / "net-log.json"
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={work_dir / 'profile'}",
              f"--window-size={window[0]},{window[1]}", "--enable-logging=stderr", "--v=0",
              "--virtual-time-budget=5000"]
    visit = subprocess.run(common + [f"--log-net-log={net_log}", "--net-log-capture-mode=Default", "--dump-dom",
                                     url], capture_output=True, text=True, timeout=timeout)
    if visit.returncode != 0 or not visit.stdout.strip():
        raise RuntimeError(f"chromium failed (status {visit.returncode}): {visit.stderr[-2000:]}")
    console = [next(group for group in match.groups() if group) for line in visit.stderr.splitlines()
               for match in [_CONSOLE.search(line)] if match]
    if screenshot is not None:
        screenshot = pathlib.Path(screenshot)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        shot = subprocess.run(common + [f"--screenshot={screenshot}", url], capture_output=True, text=True,
                              timeout=timeout)
        if shot.returncode != 0 or not screenshot.is_file():
            raise RuntimeError(f"chromium wrote no screenshot (status {shot.returncode}): {shot.stderr[-2000:]}")
    return PageVisit(visit.stdout, parse(visit.stdout), console, _page_requests(net_log))
