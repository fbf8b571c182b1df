"""The domain's service objects, built once per process from plain policy values."""

from __future__ import annotations

from dataclasses import dataclass

from api.domain.account.service import AccountService
from api.domain.alert.service import AlertService
from api.domain.diary.service import DiaryService
from api.domain.export.service import ExportService
from api.domain.outcome.service import OutcomeService
from api.domain.patient.erasure import ErasureService
from api.domain.patient.overview import OverviewService
from api.domain.patient.service import PatientService
from api.domain.prompt.service import PromptService
from api.domain.questionnaire.service import QuestionnaireService
from api.domain.treatment.service import TreatmentService


@dataclass(frozen=True)
class Services:
    accounts: AccountService
    patients: PatientService
    diary: DiaryService
    prompts: PromptService
    treatment: TreatmentService
    questionnaires: QuestionnaireService
    outcomes: OutcomeService
    alerts: AlertService
    exports: ExportService
    erasure: ErasureService
    overview: OverviewService
