"""Exports of patient records: FHIR R4 ($everything), clinic bulk NDJSON and diary CSV. Every export is audited."""

from __future__ import annotations


class ExportService:
    pass
