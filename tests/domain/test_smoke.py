from tests.factories import Factory


async def test_factory_builds_a_patient(factory: Factory) -> None:
    clinic = await factory.clinic()
    who = await factory.patient(clinic)
    entry = await factory.entry(who)
    assert entry.patient_id == who.patient.id
