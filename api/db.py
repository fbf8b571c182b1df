"""Tortoise configuration shared by the app, the CLI, the jobs process and the tests."""

from __future__ import annotations

from tortoise.exceptions import DBConnectionError

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


def is_connection_failure(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the database could not be reached or dropped the connection:
    the statement did not commit, so the caller may safely send the same request again."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBConnectionError | ConnectionError | TimeoutError):
            return True
        current = current.__cause__ or current.__context__
    return False
