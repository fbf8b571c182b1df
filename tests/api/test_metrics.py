"""`/metrics`: request counts per bounded label, error codes, gauges read from the database at scrape time (once
per few seconds, one scrape at a time), the bearer token, and a scrape that answers while the database does not."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.domain import stats
from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.push.models import Device, MessageStatus, ProviderName, PushMessage
from api.settings import Settings
from tests.api.support import client_for, codes, data, opened, post_graphql, unreachable_database
from tests.api.test_logging import captured_json_logs
from tests.conftest import Database, count_queries, make_settings
from tests.factories import PASSWORD, Factory, PatientUser
from tests.schema.test_alert_subscription import bearer, running, websocket

LOGIN = "mutation Login($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }"
METRICS_TOKEN = "metrics-scraper-token-0123456789"


class Scraped:
    """One scrape, parsed with prometheus_client's own parser (so the output is valid exposition text)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when the series does not exist (a counter never incremented)."""
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        assert len(found) <= 1, found
        return found[0] if found else 0.0

    def labels(self, name: str, label: str) -> set[str]:
        return {s.labels[label] for s in self.samples if s.name == name}

    def has(self, name: str) -> bool:
        return any(s.name == name for s in self.samples)


async def scrape(client: httpx.AsyncClient, token: str | None = None) -> Scraped:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return Scraped(response.text)


async def login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await post_graphql(http, LOGIN, {"e": email, "p": password})


# --- requests ----------------------------------------------------------------------------------------------


async def test_graphql_requests_are_counted_and_timed_per_operation(http: httpx.AsyncClient, factory: Factory) -> None:
    who = await factory.patient(await factory.clinic())
    token = data(await login(http, who.email))["login"]["accessToken"]
    for _ in range(2):
        data(await post_graphql(http, "{ me { id } }", token=token))  # anonymous: named after its first field

    scraped = await scrape(http)
    assert scraped.value("interlude_graphql_requests_total", operation="login", outcome="ok") == 1
    assert scraped.value("interlude_graphql_requests_total", operation="me", outcome="ok") == 2
    assert scraped.value("interlude_graphql_request_duration_seconds_count", operation="login") == 1
    assert scraped.value("interlude_graphql_request_duration_seconds_count", operation="me") == 2
    assert scraped.value("interlude_graphql_request_duration_seconds_bucket", operation="me", le="+Inf") == 2
    assert scraped.value("interlude_graphql_request_duration_seconds_sum", operation="me") > 0
    assert scraped.labels("interlude_graphql_requests_total", "operation") == {"login", "me"}


async def test_operations_are_counted_under_the_root_field_they_ran_whatever_their_name(
    http: httpx.AsyncClient, factory: Factory
) -> None:
    who = await factory.patient(await factory.clinic())
    token = data(await login(http, who.email))["login"]["accessToken"]
    documents = [
        ("query login { me { id } }", None, None),  # names another root field: counted as what ran
        ("query Chart { me { id } }", None, None),  # a name outside the schema
        ("query Probe_1f3a { whoAmI: me { id } }", None, None),  # an alias
        ("{ ...F } fragment F on Query { ... on Query { me { id } } }", None, None),
        ("query($s: Boolean!) { myDiary @skip(if: $s) { pageInfo { hasNextPage } } me { id } }", {"s": True}, None),
        ("query A { myDiary { pageInfo { hasNextPage } } } query B { me { id } }", None, "B"),
    ]
    with captured_json_logs() as logs:
        for document, variables, name in documents:
            body = {"query": document, "variables": variables or {}, "operationName": name}
            data(await http.post("/graphql", json=body, headers={"authorization": f"Bearer {token}"}))
    data(await post_graphql(http, "{ __typename }"))  # runs no root field of the schema

    scraped = await scrape(http)
    assert scraped.value("interlude_graphql_requests_total", operation="me", outcome="ok") == len(documents)
    assert scraped.value("interlude_graphql_requests_total", operation="login", outcome="ok") == 1  # the real one
    assert scraped.value("interlude_graphql_requests_total", operation="other", outcome="ok") == 1
    assert scraped.labels("interlude_graphql_requests_total", "operation") == {"login", "me", "other"}
    for name in ("Chart", "Probe_1f3a", "whoAmI"):
        assert name not in scraped.text
    # Logs and audit keep the name the client gave: it says which screen asked.
    logged = [json.loads(line) for line in logs.getvalue().splitlines()]
    operations = [r["operation"] for r in logged if r["event"] == "http.request"]
    assert operations == ["login", "Chart", "Probe_1f3a", None, "myDiary", "B"]


async def test_errors_are_counted_by_code_and_mark_the_request_failed(
    http: httpx.AsyncClient, factory: Factory
) -> None:
    who = await factory.patient(await factory.clinic())
    assert codes(await login(http, who.email, "wrong-password-123")) == ["UNAUTHENTICATED"]
    assert codes(await post_graphql(http, "{ me { id } }")) == ["UNAUTHENTICATED"]
    assert codes(await post_graphql(http, "{ me { id ")) == ["BAD_USER_INPUT"]
    assert codes(await post_graphql(http, LOGIN, {"e": who.email})) == ["BAD_USER_INPUT"]
    data(await login(http, who.email))  # the same operation, another outcome: a series of its own

    scraped = await scrape(http)
    assert scraped.value("interlude_graphql_errors_total", code="UNAUTHENTICATED") == 2
    assert scraped.value("interlude_graphql_errors_total", code="BAD_USER_INPUT") == 2
    assert scraped.labels("interlude_graphql_errors_total", "code") == {"UNAUTHENTICATED", "BAD_USER_INPUT"}
    assert scraped.value("interlude_graphql_requests_total", operation="login", outcome="error") == 2
    assert scraped.value("interlude_graphql_requests_total", operation="me", outcome="error") == 1
    assert scraped.value("interlude_graphql_requests_total", operation="login", outcome="ok") == 1
    # A document that does not parse runs no root field.
    assert scraped.value("interlude_graphql_requests_total", operation="other", outcome="error") == 1
    assert who.email not in scraped.text
    assert "wrong-password-123" not in scraped.text


async def test_http_requests_are_counted_by_route_template_never_by_path(http: httpx.AsyncClient) -> None:
    patient_id = uuid4()
    await http.get("/healthz")
    await http.get("/healthz")
    assert (await http.get(f"/fhir/Patient/{patient_id}/$everything")).status_code == 401
    assert (await http.get(f"/no-such-page/{patient_id}")).status_code == 404
    assert (await http.get("/graphql")).status_code == 200  # the IDE page, not an operation
    refused = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"accept": "text/html"})
    assert refused.status_code == 406  # the same route, another status: a series of its own

    scraped = await scrape(http)
    assert scraped.value("interlude_http_requests_total", route="/healthz", status="200") == 2
    assert scraped.value("interlude_http_requests_total", route="/fhir/Patient/{patient_id}/$everything", status="401")
    assert scraped.value("interlude_http_requests_total", route="unmatched", status="404") == 1
    assert scraped.value("interlude_http_requests_total", route="/graphql", status="200") == 1
    assert scraped.value("interlude_http_requests_total", route="/graphql", status="406") == 1
    assert scraped.value("interlude_http_request_duration_seconds_count", route="/healthz") == 2
    assert scraped.value("interlude_http_request_duration_seconds_count", route="/graphql") == 2
    assert str(patient_id) not in scraped.text
    assert not scraped.has("interlude_graphql_requests_total")


async def test_errors_of_websocket_operations_are_counted_as_they_happen(
    db: Database, factory: Factory, now: datetime
) -> None:
    who = await factory.patient(await factory.clinic())
    app = create_app(make_settings(db.url), manage_orm=False, clock=lambda: now)
    async with running(app) as server, websocket(server) as ws:
        assert await ws.init({"authorization": f"Bearer {bearer(app.state.services, who.actor, now)}"}) == {
            "type": "connection_ack"
        }
        assert (await ws.run("1", "{ me { id } }"))["payload"]["data"]["me"]["id"]
        failed = await ws.run("2", "query($id: ID!) { patient(id: $id) { id } }")
        assert [e["extensions"]["code"] for e in failed["payload"]["errors"]] == ["BAD_USER_INPUT"]
        async with httpx.AsyncClient(base_url=f"http://{server.address}", trust_env=False) as client:
            scraped = await scrape(client)  # while the connection is still open
    assert scraped.value("interlude_graphql_errors_total", code="BAD_USER_INPUT") == 1
    # Over HTTP only: a websocket connection is not one request, and its operations are not timed.
    assert not scraped.has("interlude_graphql_requests_total")


# --- gauges from the database ------------------------------------------------------------------------------


async def _patient_without_prompts(factory: Factory) -> PatientUser:
    who = await factory.patient(await factory.clinic())
    await Prompt.filter(patient_id=who.patient.id).delete()  # registration plans some: only ours are counted
    return who


def _prompt(who: PatientUser, now: datetime, status: PromptStatus) -> Prompt:
    return Prompt(
        id=uuid4(),
        clinic_id=who.patient.clinic_id,
        patient_id=who.patient.id,
        plan_id=uuid4(),
        rule_id="metrics",
        anchor=f"n:{uuid4().hex[:12]}",
        instrument="daily_diary",
        due_at=now,
        deliver_at=now,
        expires_at=now + timedelta(hours=6),
        status=status,
        created_at=now,
        updated_at=now,
    )


async def _device(who: PatientUser, now: datetime) -> Device:
    token = uuid4().hex
    return await Device.create(
        clinic_id=who.patient.clinic_id,
        patient_id=who.patient.id,
        provider=ProviderName.FCM,
        token=token,
        token_hash=token.ljust(64, "0"),
        created_at=now,
        last_seen_at=now,
    )


def _message(
    prompt: Prompt,
    device: Device,
    now: datetime,
    status: MessageStatus,
    *,
    sequence: int = 0,
    next_attempt_at: datetime | None = None,
    lease_until: datetime | None = None,
    error_class: str | None = None,
) -> PushMessage:
    return PushMessage(
        clinic_id=prompt.clinic_id,
        prompt_id=prompt.id,
        device_id=device.id,
        sequence=sequence,
        status=status,
        next_attempt_at=next_attempt_at or now,
        lease_until=lease_until,
        error_class=error_class,
        created_at=now,
        updated_at=now,
    )


async def test_prompts_and_push_messages_are_counted_by_status(
    http: httpx.AsyncClient, factory: Factory, now: datetime
) -> None:
    who = await _patient_without_prompts(factory)
    statuses = [PromptStatus.SCHEDULED] * 3 + [PromptStatus.SENT] * 2 + [PromptStatus.EXPIRED]
    prompts = [_prompt(who, now, status) for status in statuses]
    await Prompt.bulk_create(prompts)
    device = await _device(who, now)
    later = now + timedelta(hours=1)
    await PushMessage.bulk_create(
        [
            _message(prompts[3], device, now, MessageStatus.ACCEPTED),
            _message(prompts[4], device, now, MessageStatus.ACCEPTED),
            _message(prompts[3], device, now, MessageStatus.PENDING, sequence=1, next_attempt_at=later),
            _message(
                prompts[4],
                device,
                now,
                MessageStatus.PENDING,
                sequence=1,
                next_attempt_at=later,
                error_class="http.503",
            ),
            _message(prompts[5], device, now, MessageStatus.FAILED, error_class="http.503"),
            _message(prompts[0], device, now, MessageStatus.DEAD_TOKEN, error_class="fcm.UNREGISTERED"),
        ]
    )

    scraped = await scrape(http)
    assert scraped.value("interlude_db_up") == 1
    assert {status: scraped.value("interlude_prompts", status=status) for status in PromptStatus} == {
        "SCHEDULED": 3, "SENT": 2, "DELIVERED": 0, "OPENED": 0, "ANSWERED": 0, "EXPIRED": 1, "CANCELLED": 0,
    }  # fmt: skip
    assert {status: scraped.value("interlude_push_messages", status=status) for status in MessageStatus} == {
        "PENDING": 2, "CLAIMED": 0, "ACCEPTED": 2, "DEAD_TOKEN": 1, "FAILED": 1, "DROPPED": 0,
    }  # fmt: skip
    assert scraped.labels("interlude_push_errors", "error_class") == {"http.503", "fcm.UNREGISTERED"}
    assert scraped.value("interlude_push_errors", error_class="http.503") == 2
    assert scraped.value("interlude_push_errors", error_class="fcm.UNREGISTERED") == 1
    assert scraped.value("interlude_outbox_lag_seconds") == 0  # nothing is due yet
    assert str(who.patient.id) not in scraped.text
    assert device.token not in scraped.text


async def test_push_error_classes_are_a_bounded_set(http: httpx.AsyncClient, factory: Factory, now: datetime) -> None:
    who = await _patient_without_prompts(factory)
    prompt = _prompt(who, now, PromptStatus.EXPIRED)
    await prompt.save()
    device = await _device(who, now)
    classes = [f"expo.Invented{i:02}" for i in range(stats.MAX_ERROR_CLASSES + 5)]
    odd = ['quote"s', "new\nline", "with space"]
    messages = [
        _message(prompt, device, now, MessageStatus.FAILED, sequence=i, error_class=error_class)
        for i, error_class in enumerate([*classes, *odd, classes[0]])
    ]
    await PushMessage.bulk_create(messages)

    scraped = await scrape(http)
    labels = scraped.labels("interlude_push_errors", "error_class")
    assert len(labels) == stats.MAX_ERROR_CLASSES + 1
    # The most frequent class first, then by name; the rest (and every odd-shaped one) together.
    assert scraped.value("interlude_push_errors", error_class="expo.Invented00") == 2
    assert "expo.Invented29" in labels
    assert "expo.Invented30" not in labels
    assert scraped.value("interlude_push_errors", error_class="other") == 5 + len(odd)
    assert sum(scraped.value("interlude_push_errors", error_class=label) for label in labels) == len(messages)


async def test_outbox_lag_is_the_age_of_the_longest_overdue_message(
    db: Database, settings: Settings, factory: Factory, now: datetime
) -> None:
    moments = [now]
    app = create_app(settings, manage_orm=False, clock=lambda: moments[-1])
    who = await _patient_without_prompts(factory)
    prompt = _prompt(who, now, PromptStatus.SENT)
    await prompt.save()
    device = await _device(who, now)
    await _message(prompt, device, now, MessageStatus.PENDING, next_attempt_at=now - timedelta(seconds=90)).save()
    # Not overdue: claimed under a live lease, in the future, or done long ago.
    await _message(
        prompt, device, now, MessageStatus.CLAIMED, sequence=1, next_attempt_at=now - timedelta(hours=2),
        lease_until=now + timedelta(minutes=1),
    ).save()  # fmt: skip
    await _message(
        prompt, device, now, MessageStatus.PENDING, sequence=2, next_attempt_at=now + timedelta(hours=1)
    ).save()
    await _message(
        prompt, device, now, MessageStatus.ACCEPTED, sequence=3, next_attempt_at=now - timedelta(days=3)
    ).save()
    async with client_for(app) as client:
        assert (await scrape(client)).value("interlude_outbox_lag_seconds") == 90

        # A dispatcher died holding this one: overdue again once its lease has run out.
        await _message(
            prompt, device, now, MessageStatus.CLAIMED, sequence=4, next_attempt_at=now - timedelta(seconds=300),
            lease_until=now - timedelta(seconds=1),
        ).save()  # fmt: skip
        moments.append(now + timedelta(seconds=10))  # past the cached snapshot
        assert (await scrape(client)).value("interlude_outbox_lag_seconds") == 310


async def test_the_database_is_read_by_one_scrape_at_a_time_and_kept_a_few_seconds(
    db: Database, settings: Settings, factory: Factory, now: datetime
) -> None:
    moments = [now]
    app = create_app(settings, manage_orm=False, clock=lambda: moments[-1])
    who = await _patient_without_prompts(factory)

    async def sent() -> tuple[float, list[str]]:
        with count_queries() as statements:
            scraped = await scrape(client)
        return scraped.value("interlude_prompts", status="SENT"), statements.statements

    async with client_for(app) as client:
        # A flood: the first to take the lock reads, the others wait for it and get what it read.
        with count_queries() as flood:
            scrapes = await asyncio.gather(*(scrape(client) for _ in range(5)))
        assert {s.value("interlude_db_up") for s in scrapes} == {1}
        await _prompt(who, now, PromptStatus.SENT).save()
        moments.append(now + timedelta(seconds=4.9))
        kept = await sent()
        moments.append(now + timedelta(seconds=5))
        read_again = await sent()
        moments.append(now)  # the wall clock set back: what was read "in the future" is not kept
        after_clock_change = await sent()
    one_read = read_again[1]
    assert one_read
    assert flood.statements == one_read  # five scrapes, one read
    assert kept[1] == []
    assert (kept[0], read_again[0], after_clock_change[0]) == (0, 1, 1)
    assert after_clock_change[1] == one_read


async def test_the_database_pool_is_reported_on_postgres_only(http: httpx.AsyncClient, db: Database) -> None:
    scraped = await scrape(http)
    if db.backend == "sqlite":
        assert not scraped.has("interlude_db_pool_size")
        return
    assert scraped.value("interlude_db_pool_max") == 5  # asyncpg's default through Tortoise
    assert 1 <= scraped.value("interlude_db_pool_size") <= 5
    assert 0 <= scraped.value("interlude_db_pool_in_use") <= scraped.value("interlude_db_pool_size")


# --- access and failure ------------------------------------------------------------------------------------


async def test_a_configured_token_is_required(db: Database, settings: Settings, now: datetime) -> None:
    app = create_app(settings.model_copy(update={"metrics_token": METRICS_TOKEN}), manage_orm=False, clock=lambda: now)
    async with client_for(app) as client:
        refused = [
            await client.get("/metrics"),
            await client.get("/metrics", headers={"authorization": "Bearer " + METRICS_TOKEN[:-1]}),
            await client.get("/metrics", headers={"authorization": "Bearer " + METRICS_TOKEN + "0"}),
            await client.get("/metrics", headers={"authorization": "Basic " + METRICS_TOKEN}),
            await client.get("/metrics", headers={"authorization": METRICS_TOKEN}),
        ]
        scraped = await scrape(client, METRICS_TOKEN)
    for response in refused:
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "interlude_" not in response.text
    assert scraped.value("interlude_db_up") == 1
    # The refusals were requests like any other.
    assert scraped.value("interlude_http_requests_total", route="/metrics", status="401") == len(refused)


async def test_without_a_token_setting_the_endpoint_is_open(http: httpx.AsyncClient) -> None:
    # Development only: production refuses to start without a token (test_settings.py).
    response = await http.get("/metrics", headers={"authorization": "Bearer anything"})
    assert response.status_code == 200


async def test_a_scrape_answers_promptly_when_the_database_does_not(
    db: Database, settings: Settings, tmp_path: Path, now: datetime
) -> None:
    url = unreachable_database(db.backend, tmp_path)
    quick = settings.model_copy(update={"readiness_timeout_seconds": 0.05})
    app = create_app(quick, manage_orm=False, clock=lambda: now)
    async with opened(url), client_for(app) as client:
        await client.get("/healthz")
        # A guard, not the assertion: a scrape that hung would fail here instead of stalling the suite.
        async with asyncio.timeout(10):
            scrapes = [await scrape(client) for _ in range(2)]
    for scraped in scrapes:
        assert scraped.value("interlude_db_up") == 0
        assert not scraped.has("interlude_prompts")
        assert not scraped.has("interlude_outbox_lag_seconds")
        # What this process counted itself is still there.
        assert scraped.value("interlude_http_requests_total", route="/healthz", status="200") == 1


async def test_requests_the_view_refuses_outside_the_operation_are_counted(http: httpx.AsyncClient) -> None:
    # A subscription over POST is refused by the view before any operation runs (so outside ErrorPolicy).
    refused = await post_graphql(http, "subscription Feed { alertRaised { id } }")
    assert codes(refused) == ["BAD_USER_INPUT"]

    scraped = await scrape(http)
    assert scraped.value("interlude_graphql_errors_total", code="BAD_USER_INPUT") == 1
