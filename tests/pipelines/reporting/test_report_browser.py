"""The HTML report in a real headless browser (Debian's chromium): images load, no script errors, readable,
and laid out for a 1,400 px desktop and a 390 px phone with the headline and every warning on the first screen.

Screenshots are kept in ``test-artifacts/`` at the repository root (git-ignored) for a person to look at.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from tests.pipelines.reporting.browser import CHROMIUM, MIN_WINDOW, chromium, measure, screenshot
from tests.pipelines.reporting.conftest import DIGEST, IDENTITY

ARTIFACTS = Path(__file__).parents[3] / "test-artifacts"
WIDTHS = (1400, 390)

if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (make test installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def report(strong_run, tmp_path_factory) -> Path:
    from ketamine_response.pipelines.flows.report import run_report

    result, _, _ = strong_run
    return run_report(result.run_id, tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def small_report(site_result) -> str:
    """The hand-built site-CV result (two long warnings) with its real performance figures."""
    from ketamine_response.pipelines.evaluation.repeats import active
    from ketamine_response.pipelines.folds import pooled
    from ketamine_response.pipelines.reporting.content import report_content
    from ketamine_response.pipelines.reporting.html import render_report
    from ketamine_response.pipelines.reporting.plots import performance_figures

    sel = site_result.evaluations["selected"]
    figures = performance_figures(site_result.data.y, pooled(site_result.data, site_result.folds), sel, "elastic_net",
                                  active(site_result.data))
    return render_report(report_content(site_result, "cohort.csv", DIGEST, figures, IDENTITY))


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _assert_fits(layout: dict, width: int) -> None:
    """Nothing is wider than the viewport, and no table hides columns in a horizontal scroll box."""
    assert layout["innerWidth"] == width
    assert layout["scrollWidth"] <= layout["innerWidth"], layout["overflowing"]
    assert layout["overflowing"] == []
    for table in layout["tables"]:  # 1 px: a table's width is fractional, its container's clientWidth whole
        assert table["right"] <= width + 1 and table["width"] <= table["container"] + 1, table
        assert table["containerScroll"] <= table["container"], table


def _assert_first_screen(layout: dict, headline: str, warnings: list[str], frequencies: str) -> None:
    first = _squash(layout["firstScreen"])
    # a clinician's language first: "Of 100 courses like those in this cohort, about N respond ... on placebo"
    assert frequencies.startswith("Of 100 courses like those in this cohort, about ") and " on placebo " in frequencies
    assert _squash(frequencies) in first
    assert _squash(headline) in first
    assert warnings, "the run should carry at least one warning to check"
    for warning in warnings:
        assert _squash(warning) in first, warning[:80]


def _keep(shot: Path, width: int) -> None:
    """Keep a screenshot (cropped to the page width: a phone page is an iframe in a wider window)."""
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)[:, :width]
    assert np.std(pixels[..., :3]) > 0.05  # not a blank page
    ARTIFACTS.mkdir(exist_ok=True)
    mpimg.imsave(ARTIFACTS / f"report-{width}.png", pixels)


def test_report_loads_every_image_without_script_errors(report, tmp_path):
    dom = chromium(tmp_path, "--dump-dom", report.as_uri()).stdout
    images = re.search(r'data-images-ok="(\d+)/(\d+)"', dom)
    errors = re.search(r'data-errors="(\d+)"', dom)
    assert images and errors, dom[:500]
    loaded, total = map(int, images.groups())
    assert total >= 6 and loaded == total
    assert errors.group(1) == "0"


def test_report_screenshot_is_readable(report, tmp_path):
    import matplotlib.image as mpimg

    shot = screenshot(report.read_text(encoding="utf-8"), tmp_path, 1400, 2400)
    pixels = mpimg.imread(shot)
    assert pixels.shape[1] == 1400 and pixels.shape[0] >= 2000
    ink = (pixels[..., :3].mean(axis=2) < 0.5).mean()
    assert 0.01 < ink < 0.5  # text and plots on a light page, neither blank nor a dark error screen
    assert np.std(pixels[..., :3]) > 0.05


@pytest.mark.parametrize("width", WIDTHS)
def test_report_fits_the_screen_with_headline_and_warnings_first(report, strong_run, tmp_path, width):
    from ketamine_response.pipelines.reporting.content import headline_sentence
    from ketamine_response.pipelines.reporting.summary import natural_frequencies

    result = strong_run[0]
    page = report.read_text(encoding="utf-8")
    layout = measure(page, tmp_path, width)
    _assert_fits(layout, width)
    _assert_first_screen(layout, headline_sentence(result.evaluations["selected"]), result.warnings,
                         natural_frequencies(result))
    _keep(screenshot(page, tmp_path, width, 2400), width)


@pytest.mark.parametrize("width", WIDTHS)
def test_two_long_warnings_stay_on_the_first_screen(small_report, site_result, tmp_path, width):
    from ketamine_response.pipelines.reporting.content import headline_sentence
    from ketamine_response.pipelines.reporting.summary import natural_frequencies

    layout = measure(small_report, tmp_path, width)
    _assert_fits(layout, width)
    warnings = site_result.warnings
    assert len(warnings) == 2
    _assert_first_screen(layout, headline_sentence(site_result.evaluations["selected"]), warnings,
                         natural_frequencies(site_result))


def test_phone_width_is_really_emulated(small_report, tmp_path):
    """The phone page is an iframe inside a wider window: its media queries must see the frame's width,
    so wide tables become cards there and stay tables on a desktop."""
    phone, desktop = measure(small_report, tmp_path, 390), measure(small_report, tmp_path, 1400)
    assert MIN_WINDOW > 390 and phone["innerWidth"] == 390
    wide = [i for i, t in enumerate(desktop["tables"]) if t["columns"] > 3]
    assert wide and all(phone["tables"][i]["display"] == "block" for i in wide)
    assert all(t["display"] == "table" for t in desktop["tables"])
