"""Keeps the destruction flags in step with the patient's current consent (registered with
trial.derived in BiobankConfig.ready): a consent that withdraws biobank use flags the
patient's specimens, a later one that gives it again lifts the flags of those not destroyed."""

from biobank.models import Specimen
from biobank.services import biobank_consent_restored, biobank_consent_withdrawn
from patients.services import consent_current
from trial.derived import Refresher, register_refresher


def _refresh(*, patient, user, source: str) -> None:
    if not source.startswith("patients.consent"):
        return
    if not Specimen.objects.filter(patient=patient).exists():
        return
    consent = consent_current(patient=patient)
    if consent is None:
        return
    if consent.biobank_consent:
        biobank_consent_restored(patient=patient, user=user)
    else:
        biobank_consent_withdrawn(patient=patient, user=user, on=consent.consented_on)


register_refresher(Refresher(key="biobank", order=500, refresh=_refresh))
