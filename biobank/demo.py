"""Demo biobank (called by seed_demo after the surgery demo): a −80 °C freezer with racks of
9 × 9 boxes per site, and for every operated patient with biobank consent the research
specimens of the operation, stored in consecutive free positions; some aliquoted, a few thawed
or shipped; one or two patients withdraw biobank consent so the destruction worklist has work,
one of their specimens already destroyed. Deterministic (context.rng); all through the
services. Does nothing when no operation exists."""

from datetime import datetime, time, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone

from biobank import services
from biobank.models import Box, Freezer, Rack, Specimen
from patients.models import Consent
from patients.services import consent_current, consent_save
from surgery.models import Operation
from trial.demo import DemoContext
from trial.services import clinical_save

RACKS, BOXES_PER_RACK = 2, 3


def _storage(site, user) -> list[Box]:
    """The site's demo boxes (created once), in storage order."""
    freezer = Freezer.objects.filter(site=site, name="FZ-80-1").first()
    if freezer is None:
        freezer = clinical_save(Freezer(site=site, name="FZ-80-1", temperature_c=-80), user=user)
    for r in range(1, RACKS + 1):
        rack = Rack.objects.filter(freezer=freezer, name=f"R{r}").first()
        if rack is None:
            rack = clinical_save(Rack(freezer=freezer, name=f"R{r}"), user=user)
        for b in range(1, BOXES_PER_RACK + 1):
            name = f"{site.code}-R{r}-B{b:02d}"
            if not Box.objects.filter(rack=rack, name=name).exists():
                clinical_save(Box(rack=rack, name=name, rows=9, columns=9), user=user)
    return list(
        Box.objects.active()
        .filter(rack__freezer=freezer)
        .select_related("rack__freezer")
        .order_by("rack__name", "name")
    )


class _Positions:
    """Consecutive free positions of a site's boxes."""

    def __init__(self, boxes: list[Box]) -> None:
        taken = set(
            Specimen.objects.active().filter(box__in=boxes).values_list("box_id", "row", "column")
        )
        self._free = [
            (box, row, column)
            for box in boxes
            for row in range(1, box.rows + 1)
            for column in range(1, box.columns + 1)
            if (box.pk, row, column) not in taken
        ]

    def take(self) -> tuple[Box, int, int] | None:
        return self._free.pop(0) if self._free else None


def _at(day, hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def _store(specimen, positions, user, at, today) -> Specimen:
    place = positions.take()
    if place is None:
        return specimen
    box, row, column = place
    return services.specimen_store(
        specimen=specimen, box=box, row=row, column=column, user=user, at=at, today=today
    )


def _collect_for(context: DemoContext, operation, positions, user) -> list[Specimen]:
    rng, today = context.rng, context.today
    patient = operation.patient
    day = operation.operated_on
    liver = (
        operation.liver_wedge or operation.liver_segmentectomy or (operation.liver_hemihepatectomy)
    )
    plan = [
        (Specimen.Kind.TUMOUR, Specimen.Origin.PANCREAS, 100),
        (Specimen.Kind.ADJACENT, Specimen.Origin.PANCREAS, 100),
    ]
    if liver:
        plan.append((Specimen.Kind.TUMOUR, Specimen.Origin.LIVER, 80))
    plan.append((Specimen.Kind.DISCARDED, Specimen.Origin.PANCREAS, 500))
    hour = rng.randint(9, 13)
    specimens = []
    for index, (kind, origin, weight) in enumerate(plan):
        collected_at = _at(day, hour, 10 * index + rng.randint(0, 9))
        preservation = (
            Specimen.Preservation.FRESH_FROZEN
            if rng.random() < 0.8
            else rng.choice(
                [
                    Specimen.Preservation.RNALATER,
                    Specimen.Preservation.OCT,
                    Specimen.Preservation.FFPE,
                ]
            )
        )
        specimen = services.specimen_collect(
            specimen=Specimen(
                patient=patient,
                operation=operation,
                kind=kind,
                origin=origin,
                weight_mg=Decimal(weight + rng.randint(-20, 20) * (5 if weight >= 500 else 1)),
                collected_at=collected_at,
                warm_ischaemia_min=rng.randint(5, 40),
                cold_ischaemia_min=rng.randint(10, 45),
                preservation=preservation,
            ),
            user=user,
            today=today,
        )
        stored_at = collected_at + timedelta(hours=1)
        if timezone.localdate(stored_at) <= today:
            specimen = _store(specimen, positions, user, stored_at, today)
        specimens.append(specimen)
    return specimens


def _handle_later(context: DemoContext, specimens, positions, user) -> None:
    """Some aliquots, a few thawed or shipped specimens, a day or more after the operation
    (the first eligible specimen of each kind always, so that a small demo shows each)."""
    rng, today = context.rng, context.today
    done = context.shared.setdefault("biobank_done", {"aliquot": 0, "thaw": 0, "ship": 0})
    for specimen in specimens:
        later = specimen.collected_at + timedelta(days=rng.randint(1, 20))
        if timezone.localdate(later) > today or specimen.state != Specimen.State.STORED:
            continue
        draw = rng.random()
        if specimen.kind == Specimen.Kind.TUMOUR and (draw < 0.3 or not done["aliquot"]):
            done["aliquot"] += 1
            children = services.specimen_aliquot(
                parent=specimen,
                count=rng.choice([2, 3]),
                weight_mg_each=Decimal("25"),
                user=user,
                at=later,
                today=today,
            )
            for child in children:
                _store(child, positions, user, later + timedelta(minutes=15), today)
        elif specimen.kind == Specimen.Kind.ADJACENT and (draw < 0.1 or not done["thaw"]):
            done["thaw"] += 1
            services.specimen_thaw(
                specimen=specimen, user=user, at=later, notes="RNA extraction", today=today
            )
        elif specimen.kind == Specimen.Kind.DISCARDED and (draw < 0.1 or not done["ship"]):
            done["ship"] += 1
            services.specimen_ship(
                specimen=specimen,
                destination="Central pathology laboratory",
                user=user,
                at=later,
                today=today,
            )


def _withdraw(context: DemoContext, operations: list, destroy_one: bool) -> None:
    rng, today = context.rng, context.today
    for index, operation in enumerate(operations):
        patient = operation.patient
        user = context.user_for(patient.site)
        on = min(today, operation.operated_on + timedelta(days=rng.randint(10, 60)))
        consent_save(
            consent=Consent(
                patient=patient,
                basis=Consent.Basis.SIGNED,
                consented_on=on,
                consent_version="v1.2 (biobank withdrawn)",
                study_consent=True,
                biobank_consent=False,
            ),
            user=user,
            today=today,
        )
        if destroy_one and index == 0:
            flagged = Specimen.objects.active().filter(
                patient=patient, flagged_for_destruction=True
            )
            first = flagged.order_by("code").first()
            if first is not None:
                services.specimen_destroy(
                    specimen=first,
                    reason="Biobank consent withdrawn",
                    user=user,
                    at=_at(on, 16) if on < today else None,
                    today=today,
                )


def seed(context: DemoContext) -> None:
    """Specimens for every operated patient with biobank consent (see the module docstring)."""
    operations = list(
        Operation.objects.active().select_related("patient__site").order_by("operated_on", "pk")
    )
    if not operations:
        return
    done = set(Specimen.objects.values_list("operation_id", flat=True))
    positions: dict[int, _Positions] = {}
    seeded = []
    for operation in operations:
        if operation.pk in done:
            continue
        patient = operation.patient
        consent = consent_current(patient=patient)
        if consent is None or not consent.biobank_consent:
            continue
        site = patient.site
        user = context.user_for(site)
        if site.pk not in positions:
            positions[site.pk] = _Positions(_storage(site, user))
        try:
            specimens = _collect_for(context, operation, positions[site.pk], user)
            _handle_later(context, specimens, positions[site.pk], user)
        except ValidationError:
            continue  # e.g. a patient withdrawn before the operation: no specimen
        seeded.append(operation)
    candidates = [o for o in seeded if o.operated_on + timedelta(days=10) <= context.today]
    if candidates:
        count = 2 if len(candidates) >= 6 else 1
        _withdraw(context, context.rng.sample(candidates, count), destroy_one=True)
