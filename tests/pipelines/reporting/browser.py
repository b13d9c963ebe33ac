"""Headless Chromium helpers: render a report at a given width and read its layout back from the DOM.

Headless Chromium will not open a window narrower than 500 px (``--window-size`` is clamped), and
the DevTools protocol that could emulate a phone needs a websocket client (not in the standard
library). So a phone width is tested by loading the report into an ``<iframe srcdoc>`` of that width:
a srcdoc frame shares its parent's origin (file:// frames do not), its media queries and
``innerWidth`` see the frame's width, and a script inside it can write its measurements into the
parent page, which ``--dump-dom`` prints. Wide layouts are rendered directly in a window that wide.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.limits import HANG_S

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000", "--hide-scrollbars"]
MIN_WINDOW = 500  # Chromium's smallest headless window width
HEIGHT = 844  # a 390 x 844 phone screen (iPhone 12 to 14); a desktop window of this height shows ~700 px of page

# After load: page width against the viewport, every table against the viewport and its container,
# elements sticking out of the viewport, and the text of nodes that start on the first screen.
MEASURE = """<script>window.addEventListener('load',function(){setTimeout(function(){
var d=document,W=window.innerWidth,H=window.innerHeight;
var tables=Array.prototype.map.call(d.querySelectorAll('table'),function(t){var r=t.getBoundingClientRect();
return {right:r.right,width:r.width,container:t.parentElement.clientWidth,containerScroll:t.parentElement.scrollWidth,
display:getComputedStyle(t).display,columns:t.rows[0].cells.length};});
var out=[];Array.prototype.forEach.call(d.body.querySelectorAll('*'),function(el){var r=el.getBoundingClientRect();
if(r.width>0&&(r.right>W+0.5||r.left<-0.5)&&out.length<10){out.push(el.tagName+'.'+el.className+' '+Math.round(r.left)+'..'+Math.round(r.right));}});
var first=[],walk=d.createTreeWalker(d.body,NodeFilter.SHOW_TEXT);while(walk.nextNode()){var n=walk.currentNode;
if(!n.textContent.trim())continue;var range=d.createRange();range.selectNodeContents(n);var rs=range.getClientRects();
if(rs.length&&rs[0].top<H){first.push(n.textContent);}}
var result={innerWidth:W,innerHeight:H,scrollWidth:d.documentElement.scrollWidth,tables:tables,overflowing:out,
firstScreen:first.join(' ')};var host=window.parent!==window?window.parent.document:d;
var s=host.createElement('script');s.type='application/json';s.id='layout';
s.textContent=JSON.stringify(result).replace(/</g,'\\\\u003c');host.body.appendChild(s);},0);});</script>"""


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=HANG_S)


def page_at(report: str, tmp: Path, width: int, measure: bool = True, height: int = HEIGHT) -> tuple[Path, int]:
    """A file that shows *report* *width* px wide, and the window width to open it in."""
    page = report.replace("</body>", MEASURE + "</body>") if measure else report
    path = tmp / f"page-{width}{'-measured' if measure else ''}.html"
    if width >= MIN_WINDOW:
        path.write_text(page, encoding="utf-8")
        return path, width
    frame = (f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">'
             f'<iframe style="width:{width}px;height:{height}px;border:0;display:block" '
             f'srcdoc="{html.escape(page, quote=True)}"></iframe></body></html>')
    path.write_text(frame, encoding="utf-8")
    return path, MIN_WINDOW


def measure(report: str, tmp: Path, width: int) -> dict[str, Any]:
    """The layout measurements of *report* rendered *width* px wide with a first screen of HEIGHT px."""
    path, window = page_at(report, tmp, width)
    dom = chromium(tmp, "--dump-dom", f"--window-size={window},{HEIGHT}", path.as_uri()).stdout
    found = re.search(r'<script type="application/json" id="layout">(.*?)</script>', dom, re.S)
    assert found, dom[-2000:]
    return json.loads(found.group(1))


def screenshot(report: str, tmp: Path, width: int, height: int = HEIGHT) -> Path:
    """A PNG of the first *height* px of *report* rendered *width* px wide."""
    path, window = page_at(report, tmp, width, measure=False, height=height)
    shot = tmp / f"report-{width}.png"
    chromium(tmp, f"--screenshot={shot}", f"--window-size={window},{height}", path.as_uri())
    return shot
