"""AEF reports from the ledger (6/CMA.4): build the five tables, render them, check them,
and compare Parties' reports with each other. Pure, apart from rendering bytes."""

from registry.reports.aef import ActionType, AefReport, Table, build_aef
from registry.reports.checker import Problem, check_aef
from registry.reports.consistency import Disagreement, DisagreementKind, find_disagreements
from registry.reports.formats import ReportFormat, render

__all__ = [
    "ActionType",
    "AefReport",
    "Disagreement",
    "DisagreementKind",
    "Problem",
    "ReportFormat",
    "Table",
    "build_aef",
    "check_aef",
    "find_disagreements",
    "render",
]
