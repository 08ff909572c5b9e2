"""Insight: every app run recorded as events, rolled up per day, and the metrics that show
whether an app is worth keeping — DAU/WAU/MAU, retention cohorts, cost, latency, feedback.

The service is :class:`danlu.insight.service.Insight`; formulas are in
:mod:`danlu.insight.formulas`; see docs/insight.md.
"""

from __future__ import annotations

from danlu.insight.events import Event
from danlu.insight.formulas import FORMULAS, Formula
from danlu.insight.window import Scope, Window

__all__ = ["FORMULAS", "Event", "Formula", "Scope", "Window"]
