"""Treatment response, trends and chart series, computed from the diary on read."""

from __future__ import annotations


class OutcomeService:
    pass
