"""The self-contained HTML report (``pcapsmtp report``, ``pcapsmtp diff --format html``).

``data.py`` turns conversation dicts into the page's data (pure); ``page.py`` renders it with
Jinja2 (autoescape on) into one HTML file: inline CSS, SVG and a small script, no network
request, a Content-Security-Policy that allows only the page's own inline style and script
(by hash). The data is embedded once as JSON; the script draws a ladder when its conversation
is opened."""
from __future__ import annotations

from pcapsmtp.render.html.data import diff_data, report_data
from pcapsmtp.render.html.page import render_diff, render_report

__all__ = ["diff_data", "render_diff", "render_report", "report_data"]
