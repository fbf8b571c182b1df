"""Tortoise configuration shared by the app, the CLI, the jobs process and the tests."""

from __future__ import annotations

from api.settings import Settings

MODEL_MODULES = [
    "api.domain.account.models",
    "api.domain.patient.models",
    "api.domain.diary.models",
    "api.domain.audit.models",
    "api.domain.treatment.models",
    "api.domain.prompt.models",
    "api.domain.push.models",
    "api.domain.questionnaire.models",
    "api.domain.alert.models",
]


def tortoise_config(database_url: str) -> dict[str, object]:
    return {
        "connections": {"default": database_url},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def __getattr__(name: str) -> object:
    # Read by Tortoise's own CLI (`tortoise makemigrations`) through [tool.tortoise] in pyproject.toml;
    # computed on access so that importing this module never reads the environment.
    if name == "TORTOISE_ORM":
        return tortoise_config(Settings().database_url)
    raise AttributeError(name)
