"""Submitting questionnaires and reading them back."""

from __future__ import annotations

from api.domain.alert.service import AlertService
from api.domain.prompt.service import PromptService


class QuestionnaireService:
    def __init__(self, prompts: PromptService, alerts: AlertService) -> None:
        self.prompts = prompts
        self.alerts = alerts
