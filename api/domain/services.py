"""The domain's service objects, built once per process from plain policy values."""

from __future__ import annotations

from dataclasses import dataclass

from api.domain.account.service import AccountService
from api.domain.diary.service import DiaryService
from api.domain.patient.service import PatientService
from api.domain.prompt.service import PromptService
from api.domain.treatment.service import TreatmentService


@dataclass(frozen=True)
class Services:
    accounts: AccountService
    patients: PatientService
    diary: DiaryService
    prompts: PromptService
    treatment: TreatmentService
