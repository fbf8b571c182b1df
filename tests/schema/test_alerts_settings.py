"""`alertSettings` and `updateAlertSettings`: clinic admins only, validated, versioned, one clinic at a time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from api.domain.actor import Role
from api.domain.audit.models import AuditEvent
from api.domain.services import Services
from tests.alert_support import Ward, alerts_of, effects, log, ward
from tests.factories import Factory
from tests.graphql import GraphQLClient

SETTINGS_FIELDS = """
version escalationMinutes crisisMessage updatedAt updatedById
rules { rule version severity summary enabled mayDisable mayTune parameters defaults }
"""
READ = f"query {{ alertSettings {{ {SETTINGS_FIELDS} }} }}"
UPDATE = f"""
mutation Update($input: AlertSettingsInput!) {{ updateAlertSettings(input: $input) {{ {SETTINGS_FIELDS} }} }}
"""


@pytest_asyncio.fixture
async def w(factory: Factory) -> Ward:
    return await ward(factory)


def rule(settings: dict[str, Any], rule_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [r for r in settings["rules"] if r["rule"] == rule_id]
    assert len(found) == 1
    return found[0]


async def test_a_clinic_without_settings_runs_on_the_defaults(
    gql: GraphQLClient, services: Services, w: Ward, now: datetime
) -> None:
    settings = (await gql(READ, actor=w.admin.actor)).ok()["alertSettings"]
    assert (settings["version"], settings["escalationMinutes"], settings["updatedAt"]) == (0, 15, None)
    assert settings["crisisMessage"] == services.alerts.policy.crisis_message
    assert len(settings["rules"]) == 8
    assert rule(settings, "loss_of_response") == {
        "rule": "loss_of_response",
        "version": 1,
        "severity": "MEDIUM",
        "summary": "daily average pain well above the post-infusion low on consecutive days",
        "enabled": True,
        "mayDisable": True,
        "mayTune": True,
        "parameters": {"days": 3, "points": 2, "percent": 30},
        "defaults": {"days": 3, "points": 2, "percent": 30},
    }
    assert (rule(settings, "phq9_item9")["mayDisable"], rule(settings, "phq9_item9")["mayTune"]) == (False, False)


async def test_an_admin_changes_thresholds_and_the_version_moves_only_on_a_change(
    gql: GraphQLClient, w: Ward, now: datetime
) -> None:
    change = {
        "version": 0,
        "thresholds": {"loss_of_response": {"points": 3, "enabled": False}},
        "escalationMinutes": 10,
    }
    first = (await gql(UPDATE, {"input": change}, actor=w.admin.actor)).ok()["updateAlertSettings"]
    assert (first["version"], first["escalationMinutes"], first["updatedAt"], first["updatedById"]) == (
        1,
        10,
        now.isoformat(),
        str(w.admin.account.id),
    )
    lor = rule(first, "loss_of_response")
    assert (lor["enabled"], lor["parameters"], lor["defaults"]["points"]) == (
        False,
        {"days": 3, "points": 3, "percent": 30},
        2,
    )
    same = (await gql(UPDATE, {"input": {**change, "version": 1}}, actor=w.admin.actor)).ok()["updateAlertSettings"]
    assert same["version"] == 1
    message = (await gql(UPDATE, {"input": {"version": 1, "crisisMessage": "  Call 112.  "}}, actor=w.admin.actor)).ok()
    assert (message["updateAlertSettings"]["version"], message["updateAlertSettings"]["crisisMessage"]) == (
        2,
        "Call 112.",
    )
    # What was not sent stays as it was.
    assert rule(message["updateAlertSettings"], "loss_of_response")["enabled"] is False
    assert message["updateAlertSettings"]["escalationMinutes"] == 10
    reset = (await gql(UPDATE, {"input": {"version": 2, "thresholds": {}}}, actor=w.admin.actor)).ok()[
        "updateAlertSettings"
    ]
    assert (reset["version"], rule(reset, "loss_of_response")["enabled"]) == (3, True)
    assert await AuditEvent.filter(action="alert.settings_update").count() == 3


async def test_an_alert_records_the_clinic_settings_version_in_force(
    gql: GraphQLClient, factory: Factory, w: Ward, now: datetime
) -> None:
    change = {"version": 0, "thresholds": {"severe_vomiting": {"min_severity": 2}}}
    (await gql(UPDATE, {"input": change}, actor=w.admin.actor)).ok()
    await log(factory, w.alice, now - timedelta(hours=1), side_effects=effects(VOMITING=2))
    [alert] = await alerts_of(w.alice)
    assert (alert.rule_version, alert.details["settings_version"], alert.details["min_severity"]) == (1, 1, 2)


async def test_the_crisis_message_is_the_clinics_own_or_the_default(
    gql: GraphQLClient, factory: Factory, services: Services, w: Ward
) -> None:
    other = await ward(factory)
    (await gql(UPDATE, {"input": {"version": 0, "crisisMessage": "Call 988 or 911."}}, actor=w.admin.actor)).ok()
    assert await services.alerts.crisis_message(w.clinic.id) == "Call 988 or 911."
    assert await services.alerts.crisis_message(other.clinic.id) == services.alerts.policy.crisis_message


async def test_one_clinics_settings_do_not_touch_another(gql: GraphQLClient, factory: Factory, w: Ward) -> None:
    other = await ward(factory)
    (await gql(UPDATE, {"input": {"version": 0, "escalationMinutes": 5}}, actor=w.admin.actor)).ok()
    theirs = (await gql(READ, actor=other.admin.actor)).ok()["alertSettings"]
    assert (theirs["version"], theirs["escalationMinutes"]) == (0, 15)


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ({"thresholds": {"nope": {}}}, "thresholds", "unknown rule 'nope'"),
        ({"thresholds": {"gad7_severe": {"min_score": 22}}}, "thresholds", "gad7_severe.min_score"),
        ({"thresholds": {"red_flag_symptom": {"enabled": False}}}, "thresholds", "cannot be disabled"),
        ({"thresholds": {"phq9_item9": {"min_answer": 3}}}, "thresholds", "phq9_item9.min_answer is fixed at 1"),
        ({"thresholds": {"red_flag_symptom": {"min_severity": 3}}}, "thresholds", "threshold cannot be changed"),
        ({"thresholds": [1, 2]}, "thresholds", "must be an object"),
        ({"escalationMinutes": 0}, "escalationMinutes", "between 1 and 1440"),
        ({"escalationMinutes": 1441}, "escalationMinutes", "between 1 and 1440"),
        ({"crisisMessage": "   "}, "crisisMessage", "1 to 2000 characters"),
        ({"crisisMessage": "x" * 2001}, "crisisMessage", "1 to 2000 characters"),
    ],
)
async def test_bad_settings_are_refused_naming_the_field_and_nothing_changes(
    gql: GraphQLClient, w: Ward, value: dict[str, Any], field: str, message: str
) -> None:
    change = {"version": 0, **value, "escalationMinutes": value.get("escalationMinutes", 30)}
    result = await gql(UPDATE, {"input": change}, actor=w.admin.actor)
    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], [field])
    assert message in result.errors[0]["message"]
    assert (await gql(READ, actor=w.admin.actor)).ok()["alertSettings"]["version"] == 0


@pytest.mark.parametrize("document", [READ, UPDATE])
async def test_only_admins_read_or_change_settings(gql: GraphQLClient, w: Ward, document: str) -> None:
    variables = {"input": {"version": 0, "escalationMinutes": 5}}
    assert (await gql(document, variables)).codes == ["UNAUTHENTICATED"]
    assert (await gql(document, variables, actor=w.clinician.actor)).codes == ["FORBIDDEN"]
    assert (await gql(document, variables, actor=w.alice.actor)).codes == ["FORBIDDEN"]
    assert (await gql(READ, actor=w.admin.actor)).ok()["alertSettings"]["version"] == 0


async def test_a_change_made_from_an_older_version_is_refused_and_loses_nothing(
    gql: GraphQLClient, factory: Factory, w: Ward
) -> None:
    """Two admins read version 0; the first saves a loss-of-response override; the second, still at version 0,
    sends her own thresholds, which would have replaced the first admin's override without a word."""
    second_admin = await factory.staff(w.clinic, Role.ADMIN)
    first = {"version": 0, "thresholds": {"loss_of_response": {"points": 3}}}
    (await gql(UPDATE, {"input": first}, actor=w.admin.actor)).ok()
    stale = {"version": 0, "thresholds": {"severe_vomiting": {"min_severity": 2}}}
    refused = await gql(UPDATE, {"input": stale}, actor=second_admin.actor)
    assert (refused.codes, refused.fields) == (["CONFLICT"], ["version"])
    assert "at version 1, not 0" in refused.errors[0]["message"]
    kept = (await gql(READ, actor=second_admin.actor)).ok()["alertSettings"]
    assert (kept["version"], rule(kept, "loss_of_response")["parameters"]["points"]) == (1, 3)
    assert rule(kept, "severe_vomiting")["parameters"]["min_severity"] == 3
    # From the version just read, both changes stand.
    merged = {"version": 1, "thresholds": {"loss_of_response": {"points": 3}, "severe_vomiting": {"min_severity": 2}}}
    saved = (await gql(UPDATE, {"input": merged}, actor=second_admin.actor)).ok()["updateAlertSettings"]
    assert (saved["version"], saved["updatedById"]) == (2, str(second_admin.account.id))
    ahead = await gql(UPDATE, {"input": {"version": 7, "escalationMinutes": 5}}, actor=w.admin.actor)
    assert (ahead.codes, ahead.fields) == (["CONFLICT"], ["version"])


async def test_the_version_is_required(gql: GraphQLClient, w: Ward) -> None:
    result = await gql(UPDATE, {"input": {"escalationMinutes": 5}}, actor=w.admin.actor)
    # A variable missing a required field is refused before any resolver runs.
    assert result.data is None
    assert "version" in result.errors[0]["message"]
    assert (await gql(READ, actor=w.admin.actor)).ok()["alertSettings"]["version"] == 0
