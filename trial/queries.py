"""Writes of the data queries: raise, answer, close, re-open, and the automatic checks' sync.

A query is a question on one field of one record (or on the whole form, `field` empty). Its
status moves open → answered → closed, and back to open on a re-open; every step adds a
`QueryMessage` to the thread, and both tables keep their audit history (simple-history,
attributed to the acting user, or to nobody for an automatic check). Who may do what is the
role matrix (`trial.raise_query`: monitors and data managers raise, close, re-open;
`trial.answer_query`: coordinators and investigators answer), checked here as well as in the
views, so a rejected step never changes anything. Views stay thin; reads are in
`trial.query_selectors`.
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from trial.models import AuditedModel, DataQuery, QueryMessage, QueryStatus
from trial.scoping import site_ids_for

RAISE_PERMISSION = "trial.raise_query"
ANSWER_PERMISSION = "trial.answer_query"
TEXT_MAX = 1000  # DataQuery.text
MESSAGE_MAX = 2000  # QueryMessage.text
# Bookkeeping columns of the CRF base: not data a query can be about.
NOT_QUERYABLE = frozenset(
    {
        "id",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
        "version",
        "voided_at",
        "voided_by",
        "void_reason",
        "status",
    }
)


# --- records, fields, patients --------------------------------------------------------------


def record_patient(record: models.Model) -> models.Model | None:
    """The patient whose casebook `record` belongs to: the record itself for a patient, its
    `patient` for a form, or its parent form's patient for a child row (a pathology report's
    operation, a lab result's panel). None for records outside any casebook (storage)."""
    patient_model = DataQuery._meta.get_field("patient").related_model
    if isinstance(record, patient_model):
        return record
    if getattr(record, "patient_id", None) is not None:
        return record.patient
    for field in record._meta.concrete_fields:
        if not field.many_to_one or field.related_model is patient_model:
            continue
        parent = getattr(record, field.name, None)
        if parent is not None and getattr(parent, "patient_id", None) is not None:
            return parent.patient
    return None


def queryable_fields(model: type[models.Model]) -> list[models.Field]:
    """The fields of `model` a query may be raised on: its editable data fields, in order."""
    return [
        field
        for field in model._meta.concrete_fields
        if field.editable and not field.primary_key and field.name not in NOT_QUERYABLE
    ]


def field_label(model: type[models.Model] | None, field: str) -> str:
    """The label a user reads for `field` of `model` ("" → the whole form)."""
    if not field:
        return _("Whole form")
    if model is None:
        return field
    try:
        return capfirst(str(model._meta.get_field(field).verbose_name))
    except FieldDoesNotExist:
        return field


def _check_field(model: type[models.Model], field: str) -> None:
    if field and field not in {f.name for f in queryable_fields(model)}:
        raise ValidationError(
            {
                "field": _("%(model)s has no field %(field)s that a query can be raised on.")
                % {"model": model._meta.verbose_name.capitalize(), "field": field}
            }
        )


def _check_text(text: str, *, key: str, limit: int, required: bool, missing: str) -> str:
    text = (text or "").strip()
    if required and not text:
        raise ValidationError({key: missing})
    if len(text) > limit:
        raise ValidationError(
            {
                key: _("Keep it to %(limit)s characters (this is %(length)s).")
                % {"limit": limit, "length": len(text)}
            }
        )
    return text


def _require(user: AbstractBaseUser, permission: str, message: str) -> None:
    if not user.has_perm(permission):
        raise PermissionDenied(message)


def _require_site(user: AbstractBaseUser, site_id: int) -> None:
    if site_id not in site_ids_for(user):
        raise PermissionDenied(_("This query belongs to a site you do not work at."))


def _stamp(instance: models.Model, user: AbstractBaseUser | None, reason: str) -> None:
    """Attribute the history row to `user` (None: an automatic check), never to whoever's
    request happens to be running, and keep the message as the change reason."""
    instance._history_user = user
    instance._change_reason = reason[:100]


def _message(
    query: DataQuery, action: str, text: str, user: AbstractBaseUser | None
) -> QueryMessage:
    message = QueryMessage(query=query, action=action, text=text, author=user)
    _stamp(message, user, text)
    message.save()
    return message


def _move(query: DataQuery, status: str, user: AbstractBaseUser | None, reason: str, now) -> None:
    query.status = status
    query.status_changed_at = now
    query.closed_at = now if status == QueryStatus.CLOSED else None
    _stamp(query, user, reason)
    query.save(update_fields=["status", "status_changed_at", "closed_at"])


def _locked(query: DataQuery) -> DataQuery:
    """The query re-read under a row lock: concurrent steps are serialised, and the status a
    step is judged on is the committed one."""
    return DataQuery.objects.select_for_update().get(pk=query.pk)


# --- the lifecycle ------------------------------------------------------------------------


@transaction.atomic
def query_raise(
    record: models.Model, *, user: AbstractBaseUser, field: str, text: str
) -> DataQuery:
    """Raise a query on `field` of `record` ("" for the whole form) with the question `text`.

    The site and the patient are the record's. Refused: PermissionDenied without
    `trial.raise_query` or for a record of another site; ValidationError keyed "field" for a
    field the record's model does not have (or that holds no data), keyed "text" for an empty
    or too long question, and unkeyed for a voided record or one outside any casebook. Returns
    the open query, with its first message.
    """
    _require(user, RAISE_PERMISSION, _("Only monitors and data managers raise queries."))
    if not isinstance(record, AuditedModel) or record.pk is None:
        raise ValidationError(_("Queries can only be raised on a saved clinical record."))
    field = (field or "").strip()
    _check_field(type(record), field)
    text = _check_text(
        text, key="text", limit=TEXT_MAX, required=True, missing=_("Write the question.")
    )
    patient = record_patient(record)
    if patient is None:
        raise ValidationError(_("This record belongs to no patient: it cannot be queried."))
    _require_site(user, patient.site_id)
    if record.voided_at is not None:
        raise ValidationError(_("This record was voided: there is nothing left to query."))
    query = DataQuery(
        content_type=ContentType.objects.get_for_model(record),
        object_id=record.pk,
        patient=patient,
        site_id=patient.site_id,
        field=field,
        kind=DataQuery.Kind.MANUAL,
        text=text,
        raised_by=user,
    )
    query.full_clean()
    _stamp(query, user, text)
    query.save()
    _message(query, QueryMessage.Action.RAISE, text, user)
    return query


@transaction.atomic
def query_answer(query: DataQuery, *, user: AbstractBaseUser, text: str) -> DataQuery:
    """Answer an open query (open → answered): what was checked or corrected at the site.

    Refused: PermissionDenied without `trial.answer_query` or for another site's query;
    ValidationError keyed "text" for an empty answer, unkeyed when the query is not open.
    """
    _require(user, ANSWER_PERMISSION, _("Only coordinators and investigators answer queries."))
    _require_site(user, query.site_id)
    text = _check_text(
        text, key="text", limit=MESSAGE_MAX, required=True, missing=_("Write the answer.")
    )
    stored = _locked(query)
    if stored.status != QueryStatus.OPEN:
        raise ValidationError(
            _("This query is %(status)s: only an open query can be answered.")
            % {"status": stored.get_status_display().lower()}
        )
    _move(stored, QueryStatus.ANSWERED, user, text, timezone.now())
    _message(stored, QueryMessage.Action.ANSWER, text, user)
    return stored


@transaction.atomic
def query_close(query: DataQuery, *, user: AbstractBaseUser, text: str = "") -> DataQuery:
    """Close an open or answered query (→ closed), with an optional note.

    Refused: PermissionDenied without `trial.raise_query` or for another site's query;
    ValidationError when the query is already closed or the note is too long. A system query
    closed by a person is the data accepted as they are: the check does not raise it again.
    """
    _require(user, RAISE_PERMISSION, _("Only monitors and data managers close queries."))
    _require_site(user, query.site_id)
    text = _check_text(text, key="text", limit=MESSAGE_MAX, required=False, missing="")
    stored = _locked(query)
    if stored.status == QueryStatus.CLOSED:
        raise ValidationError(_("This query is already closed."))
    _move(stored, QueryStatus.CLOSED, user, text or _("Closed."), timezone.now())
    _message(stored, QueryMessage.Action.CLOSE, text, user)
    return stored


@transaction.atomic
def query_reopen(query: DataQuery, *, user: AbstractBaseUser, text: str) -> DataQuery:
    """Re-open a closed or answered query (→ open) with the reason, e.g. an answer that does
    not settle it.

    Refused: PermissionDenied without `trial.raise_query` or for another site's query;
    ValidationError keyed "text" without a reason, unkeyed when the query is already open or
    when re-opening a system query would give its record two open queries of the same check.
    """
    _require(user, RAISE_PERMISSION, _("Only monitors and data managers re-open queries."))
    _require_site(user, query.site_id)
    text = _check_text(
        text,
        key="text",
        limit=MESSAGE_MAX,
        required=True,
        missing=_("Say why the query is re-opened."),
    )
    stored = _locked(query)
    if stored.status == QueryStatus.OPEN:
        raise ValidationError(_("This query is already open."))
    try:
        with transaction.atomic():
            _move(stored, QueryStatus.OPEN, user, text, timezone.now())
    except IntegrityError as exc:
        raise ValidationError(
            _(
                "The automatic check has asked this again in a newer query of this record: "
                "answer that one."
            )
        ) from exc
    _message(stored, QueryMessage.Action.REOPEN, text, user)
    return stored


# --- automatic checks -----------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """What a check found wrong: the record, the field at fault ("" for the whole form) and
    the question to ask, with the real values in it."""

    record: models.Model
    field: str
    text: str


@dataclass
class SyncResult:
    raised: int = 0
    closed: int = 0
    kept: int = 0


def _closed_by_a_person(rule: str, patient_ids: Collection[int] | None) -> set[tuple[int, int]]:
    """(content type, record) of the rule's closed queries whose last close was a person's:
    the data were accepted as they are, so the check does not ask again. One query."""
    last_closer = (
        QueryMessage.objects.filter(query=OuterRef("pk"), action=QueryMessage.Action.CLOSE)
        .order_by("-at", "-id")
        .values("author_id")[:1]
    )
    closed = DataQuery.objects.filter(
        kind=DataQuery.Kind.SYSTEM, rule=rule, status=QueryStatus.CLOSED
    )
    if patient_ids is not None:
        closed = closed.filter(patient_id__in=list(patient_ids))
    rows = closed.annotate(closer=Subquery(last_closer)).filter(closer__isnull=False)
    return set(rows.values_list("content_type_id", "object_id"))


def _system_query_create(
    rule: str, key: tuple[int, int], finding: Finding, patient: models.Model
) -> DataQuery:
    query = DataQuery(
        content_type_id=key[0],
        object_id=key[1],
        patient_id=patient.pk,
        site_id=patient.site_id,
        field=finding.field,
        kind=DataQuery.Kind.SYSTEM,
        rule=rule,
        text=finding.text[:TEXT_MAX],
        raised_by=None,
    )
    _stamp(query, None, query.text)
    query.save()
    _message(query, QueryMessage.Action.RAISE, query.text, None)
    return query


def system_query_sync(
    rule: str,
    findings: Iterable[Finding],
    *,
    patient_ids: Collection[int] | None = None,
) -> SyncResult:
    """Make the open system queries of check `rule` match its `findings`.

    `patient_ids`: the patients the check looked at (None: everyone), so queries of other
    patients are left alone. A finding without a query gets one (open, raised by nobody,
    message "raise"), unless a person closed the rule's last query on that record; a
    non-closed query whose record is no longer found (data fixed, record voided or gone) is
    closed by the system with a message saying so. Never duplicates: the database allows one
    non-closed system query per rule and record, and a query raised meanwhile by a concurrent
    run is kept, not repeated. The closes take one savepoint, the new queries another (one
    per query only after a clash with a concurrent run), so a run's statements grow only by
    the queries it writes. Returns the counts raised, closed and kept.
    """
    findings = list(findings)
    result = SyncResult()
    pending = DataQuery.objects.filter(kind=DataQuery.Kind.SYSTEM, rule=rule).exclude(
        status=QueryStatus.CLOSED
    )
    if patient_ids is not None:
        ids = list(patient_ids)
        if not ids:
            return result
        pending = pending.filter(patient_id__in=ids)
    existing = {
        (q.content_type_id, q.object_id): q
        for q in pending.only("pk", "content_type_id", "object_id")
    }
    wanted: dict[tuple[int, int], Finding] = {}
    for finding in findings:
        content_type = ContentType.objects.get_for_model(finding.record)
        wanted.setdefault((content_type.pk, finding.record.pk), finding)
    accepted = _closed_by_a_person(rule, patient_ids) if set(wanted) - set(existing) else set()

    now = timezone.now()
    fixed = [query.pk for key, query in existing.items() if key not in wanted]
    result.kept += len(existing) - len(fixed)
    if fixed:
        text = _(
            "Closed automatically: the data were corrected and the check no longer finds this."
        )
        with transaction.atomic():
            # Locked and re-read: a query a person closed meanwhile is left as they left it.
            locked = DataQuery.objects.select_for_update().filter(pk__in=fixed).order_by("pk")
            for stored in locked.exclude(status=QueryStatus.CLOSED):
                _move(stored, QueryStatus.CLOSED, None, text, now)
                _message(stored, QueryMessage.Action.CLOSE, text, None)
                result.closed += 1

    new = [
        (key, finding, patient)
        for key, finding in wanted.items()
        if key not in existing and key not in accepted
        for patient in [record_patient(finding.record)]
        if patient is not None
    ]
    if not new:
        return result
    try:
        # One savepoint for all of them: the usual case has no conflict.
        with transaction.atomic():
            for key, finding, patient in new:
                _system_query_create(rule, key, finding, patient)
        result.raised += len(new)
    except IntegrityError:
        # A concurrent run raised some of them first: theirs stand; add the others one by one.
        for key, finding, patient in new:
            try:
                with transaction.atomic():
                    _system_query_create(rule, key, finding, patient)
            except IntegrityError:
                result.kept += 1
            else:
                result.raised += 1
    return result
