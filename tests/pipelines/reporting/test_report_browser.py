"""The HTML report in a real headless browser (Debian's chromium): images load, no script errors, readable."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000", "--hide-scrollbars"]

if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (make test installs it)", allow_module_level=True)


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report(strong_run, tmp_path_factory) -> Path:
    from pipelines.flows.report import run_report

    result, _, _ = strong_run
    return run_report(result.run_id, tmp_path_factory.mktemp("report"), experiment="tests")


def test_report_loads_every_image_without_script_errors(report, tmp_path):
    dom = _chromium(tmp_path, "--dump-dom", report.as_uri()).stdout
    images = re.search(r'data-images-ok="(\d+)/(\d+)"', dom)
    errors = re.search(r'data-errors="(\d+)"', dom)
    assert images and errors, dom[:500]
    loaded, total = map(int, images.groups())
    assert total >= 6 and loaded == total
    assert errors.group(1) == "0"


def test_report_screenshot_is_readable(report, tmp_path):
    import matplotlib.image as mpimg

    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2400", report.as_uri())
    pixels = mpimg.imread(shot)
    assert pixels.shape[1] == 1200 and pixels.shape[0] >= 2000
    ink = (pixels[..., :3].mean(axis=2) < 0.5).mean()
    assert 0.01 < ink < 0.5  # text and plots on a light page, neither blank nor a dark error screen
    assert np.std(pixels[..., :3]) > 0.05
