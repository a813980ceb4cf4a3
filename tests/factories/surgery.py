"""Factories for the surgery app and helpers that go through the real services.

`surgical_patient` gives an enrolled patient (enrolled 21 Feb 2026) with a response evaluation
of 20 Mar 2026 that referred them to the MDT; the services are called with `TODAY` below.
"""

from datetime import date

import factory

from assessments.models import ResponseEvaluation
from patients.models import Patient
from surgery import services
from surgery.models import Complication, Discharge, MdtDecision, MdtEvidence, Operation, Pathology
from tests.factories.imaging import ResponseEvaluationFactory
from tests.factories.patients import PatientFactory, enrolled_patient
from tests.factories.trial import UserFactory
from trial.models import Cohort, FormStatus, Role

TODAY = date(2026, 11, 24)
ENROLLED_ON = date(2026, 2, 21)
EVALUATED_ON = date(2026, 3, 20)
MDT_ON = date(2026, 3, 30)
OPERATED_ON = date(2026, 4, 20)


class MdtDecisionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MdtDecision

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.ENROLLED)
    decided_on = MDT_ON
    attended_surgeon = True
    attended_oncologist = True
    decision = MdtDecision.Decision.RADICAL_SURGERY
    rationale = "Partial response of the liver metastases; resectable."
    planned_pancreatic = "pd"
    investigator = factory.SubFactory(UserFactory)
    status = FormStatus.COMPLETE


class OperationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Operation

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.ENROLLED)
    operated_on = OPERATED_ON
    pancreatic_procedure = "pd"
    approach = Operation.Approach.OPEN
    operative_minutes = 360
    blood_loss_ml = 400
    status = FormStatus.COMPLETE


class PathologyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pathology

    operation = factory.SubFactory(OperationFactory)
    reported_on = date(2026, 4, 28)
    ypt = Pathology.YpT.T2
    ypn = Pathology.YpN.N1
    margin_pancreas = Pathology.Margin.R0
    nodes_examined = 18
    nodes_positive = 2
    regression_grade = 2
    differentiation = Pathology.Differentiation.MODERATE
    perineural_invasion = True
    lymphovascular_invasion = False
    status = FormStatus.COMPLETE


class ComplicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Complication

    operation = factory.SubFactory(OperationFactory)
    onset_on = date(2026, 4, 25)
    kind = Complication.Kind.SSI
    clavien_dindo = "II"
    status = FormStatus.COMPLETE


class DischargeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Discharge

    operation = factory.SubFactory(OperationFactory)
    discharged_on = date(2026, 5, 2)
    status = FormStatus.COMPLETE


def surgical_patient(*, site, user, cohort: str = Cohort.PROSPECTIVE) -> tuple:
    """(patient, evaluation): enrolled on 21 Feb 2026, referred to the MDT on 20 Mar 2026."""
    patient = enrolled_patient(site=site, user=user, today=date(2026, 3, 1), cohort=cohort)
    evaluation = ResponseEvaluationFactory(
        patient=patient,
        evaluated_on=EVALUATED_ON,
        imaging__performed_on=date(2026, 3, 18),
        decision=ResponseEvaluation.Decision.REFER_MDT,
    )
    return patient, evaluation


def mdt_record(patient, investigator, *, on=MDT_ON, evaluations=(), **fields) -> MdtDecision:
    values = {
        "decision": MdtDecision.Decision.RADICAL_SURGERY,
        "rationale": "Resectable after chemotherapy.",
        "planned_pancreatic": "pd",
        "attended_surgeon": True,
        **fields,
    }
    return services.mdt_decision_save(
        decision=MdtDecision(patient=patient, decided_on=on, **values),
        evaluations=list(evaluations),
        user=investigator,
        today=TODAY,
    )


def operation_record(patient, user, *, decision, on=OPERATED_ON, **fields) -> Operation:
    values = {
        "pancreatic_procedure": "pd",
        "approach": Operation.Approach.OPEN,
        "operative_minutes": 360,
        "blood_loss_ml": 400,
        **fields,
    }
    return services.operation_save(
        operation=Operation(patient=patient, mdt_decision=decision, operated_on=on, **values),
        user=user,
        today=TODAY,
    )


def operated_patient(*, site, investigator, **operation_fields) -> Operation:
    """A patient through evaluation → MDT (radical surgery) → operation on 20 Apr 2026."""
    patient, evaluation = surgical_patient(site=site, user=investigator)
    decision = mdt_record(patient, investigator, evaluations=[evaluation])
    return operation_record(patient, investigator, decision=decision, **operation_fields)


def _evidence(site) -> MdtEvidence:
    decision = MdtDecisionFactory(patient=PatientFactory(site=site))
    evaluation = ResponseEvaluationFactory(patient=decision.patient)
    return MdtEvidence(decision=decision, evaluation=evaluation)


def _investigator():
    return UserFactory(roles=[Role.INVESTIGATOR])


# Builders of one unsaved, valid row per audited model (collected by tests/trial/test_audit.py).
AUDIT_BUILDERS = {
    "surgery.MdtDecision": lambda site: MdtDecisionFactory.build(
        patient=PatientFactory(site=site), investigator=_investigator()
    ),
    "surgery.MdtEvidence": _evidence,
    "surgery.Operation": lambda site: OperationFactory.build(patient=PatientFactory(site=site)),
    "surgery.Pathology": lambda site: PathologyFactory.build(
        operation=OperationFactory(patient=PatientFactory(site=site))
    ),
    "surgery.Complication": lambda site: ComplicationFactory.build(
        operation=OperationFactory(patient=PatientFactory(site=site))
    ),
    "surgery.Discharge": lambda site: DischargeFactory.build(
        operation=OperationFactory(patient=PatientFactory(site=site))
    ),
}
