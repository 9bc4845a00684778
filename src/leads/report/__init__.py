"""The review report: a self-contained HTML page and a Markdown file built from a project.

::

    from leads.report import build_report
    paths = build_report(project, "report/")        # report.html, report.md, prisma.svg, forest-*.svg

Sections: the question, the searches with their provenance, the PRISMA 2020 diagram, screening
statistics (with AI/human agreement where both decided), the included studies' characteristics,
the results with forest plots (every number links to the extracted value and its quote), the
registry discrepancies, and a methods paragraph written from the project's logs.
"""

from leads.report.build import ReportError, build_report, methods_paragraph, report_data

__all__ = ["ReportError", "build_report", "methods_paragraph", "report_data"]
