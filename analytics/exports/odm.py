"""The whole study as CDISC ODM 1.3.2 (FileType Snapshot), streamed with lxml.etree.xmlfile.

Design:
- Study / MetaDataVersion "MDV.1": one StudyEventDef per protocol phase (forms.Phase), one
  FormDef and one repeating ItemGroupDef per export table (forms.FORMS), one ItemDef per
  column except the subject code (the SubjectKey), the record id (the ItemGroupRepeatKey)
  and the voided flag (voided rows are not in a snapshot). Labels (Question) and help or
  derivation texts (Description) carry TranslatedText in English and Chinese ("zh"); coded
  columns refer to a CodeList whose items decode in both languages; units are
  MeasurementUnits of BasicDefinitions.
- AdminData: one Location per site of the exported patients (SubjectData/SiteRef refers to
  it) and, with audit records, one User per user in the audit trail (login name only; USR.0
  stands for changes without a recorded user).
- ClinicalData: one SubjectData per patient (SubjectKey = subject code), a StudyEventData per
  phase with data, a FormData per table and an ItemGroupData per record. ItemData is left out
  for a missing value (None or empty text). Values are stored codes, ISO 8601 dates and
  times, 1/0 for booleans.
- With `include_audit`: every ItemGroupData carries the AuditRecord of the record's last
  change (who, site, when, reason for change), and ClinicalData/AuditRecords lists the whole
  trail, one AuditRecord per history row (ID "AR.<table>.<history id>", SourceID
  "<subject> <table> <record id> v<version> <created|changed|deleted>").
- The data version: AsOfDateTime is the last change; the content hash
  (analytics.exports.version, the same as the CSV and JSON exports of the same rows) is
  written as a comment at the end of the root element.

Memory stays flat: every table is read by `forms.export_rows` ordered by patient id, the
tables are merged on the patient id, and one subject is built and written at a time.
"""

from __future__ import annotations

import heapq
import io
import itertools
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils import timezone, translation
from lxml import etree

from analytics.exports.forms import (
    FORMS,
    PHASE_LABELS,
    ExportForm,
    Kind,
    Phase,
    column_codes,
    csv_value,
    export_rows,
)
from analytics.exports.version import ContentHash, as_of
from trial.models import Site, Study

NS = "http://www.cdisc.org/ns/odm/v1.3"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
LANGUAGES = (("en", "en"), ("zh", "zh-hans"))  # (xml:lang, Django language)
MDV_OID = "MDV.1"
UNKNOWN_USER_OID = "USR.0"
FLUSH_BYTES = 256 * 1024
DATA_TYPES = {
    Kind.TEXT: "text",
    Kind.INTEGER: "integer",
    Kind.DECIMAL: "float",
    Kind.DATE: "date",
    Kind.DATETIME: "datetime",
    Kind.BOOLEAN: "boolean",
}
HISTORY_ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}
# Columns that are not items: the key of the subject, the repeat key, and the voided flag.
NOT_ITEMS = ("subject_code", "id", "voided")


def _tag(name: str) -> str:
    return f"{{{NS}}}{name}"


def _el(parent, name: str, text: str | None = None, **attrib) -> etree._Element:
    element = etree.SubElement(parent, _tag(name), {k: v for k, v in attrib.items() if v})
    if text is not None:
        element.text = text
    return element


def _translated(parent, name: str, text) -> etree._Element:
    """<name><TranslatedText xml:lang="en">…</TranslatedText><… "zh">…</…></name>."""
    element = _el(parent, name)
    for xml_lang, language in LANGUAGES:
        with translation.override(language):
            rendered = str(text)
        _el(element, "TranslatedText", rendered).set(XML_LANG, xml_lang)
    return element


def form_oid(form: ExportForm) -> str:
    return f"F.{form.name.upper()}"


def item_group_oid(form: ExportForm) -> str:
    return f"IG.{form.name.upper()}"


def item_oid(form: ExportForm, column_name: str) -> str:
    return f"IT.{form.name.upper()}.{column_name.upper()}"


def code_list_oid(form: ExportForm, column_name: str) -> str:
    return f"CL.{form.name.upper()}.{column_name.upper()}"


def event_oid(phase: Phase) -> str:
    return f"SE.{phase.value.upper()}"


def location_oid(site_code: str) -> str:
    return f"LOC.{site_code}"


def user_oid(user_id: int | None) -> str:
    return f"USR.{user_id}" if user_id else UNKNOWN_USER_OID


def _items(form: ExportForm):
    return [c for c in form.columns if c.name not in NOT_ITEMS]


def _phases() -> list[Phase]:
    present = {form.phase for form in FORMS}
    return [phase for phase in Phase if phase in present]


def _study() -> Study | None:
    return Study.objects.filter(code=settings.STUDY_CODE).first() or Study.objects.first()


def _study_oid(study: Study | None) -> str:
    return f"ST.{study.code if study else settings.STUDY_CODE}"


def study_element(study: Study | None) -> etree._Element:
    """Study: GlobalVariables, BasicDefinitions (units) and the MetaDataVersion."""
    root = etree.Element(_tag("Study"), OID=_study_oid(study), nsmap={None: NS})
    variables = _el(root, "GlobalVariables")
    _el(variables, "StudyName", study.code if study else settings.STUDY_CODE)
    _el(variables, "StudyDescription", study.title if study else "PLM-EDC")
    _el(variables, "ProtocolName", study.code if study else settings.STUDY_CODE)

    units: dict[str, str] = {}
    for form in FORMS:
        for column in _items(form):
            if column.unit and column.unit not in units:
                units[column.unit] = f"MU.{len(units) + 1}"
    if units:
        basic = _el(root, "BasicDefinitions")
        for unit, oid in units.items():
            measurement = _el(basic, "MeasurementUnit", OID=oid, Name=unit)
            symbol = _el(measurement, "Symbol")
            for xml_lang, _language in LANGUAGES:
                _el(symbol, "TranslatedText", unit).set(XML_LANG, xml_lang)

    mdv = _el(root, "MetaDataVersion", OID=MDV_OID, Name="PLM-EDC export")
    protocol = _el(mdv, "Protocol")
    for number, phase in enumerate(_phases(), start=1):
        _el(
            protocol,
            "StudyEventRef",
            StudyEventOID=event_oid(phase),
            OrderNumber=str(number),
            Mandatory="No",
        )
    for phase in _phases():
        event = _el(
            mdv,
            "StudyEventDef",
            OID=event_oid(phase),
            Name=phase.value,
            Repeating="No",
            Type="Common",
        )
        _translated(event, "Description", PHASE_LABELS[phase])
        for number, form in enumerate((f for f in FORMS if f.phase == phase), start=1):
            _el(event, "FormRef", FormOID=form_oid(form), OrderNumber=str(number), Mandatory="No")
    for form in FORMS:
        form_def = _el(mdv, "FormDef", OID=form_oid(form), Name=form.name, Repeating="No")
        _translated(form_def, "Description", form.label)
        _el(form_def, "ItemGroupRef", ItemGroupOID=item_group_oid(form), Mandatory="No")
    for form in FORMS:
        group = _el(mdv, "ItemGroupDef", OID=item_group_oid(form), Name=form.name, Repeating="Yes")
        _translated(group, "Description", form.label)
        for number, column in enumerate(_items(form), start=1):
            _el(
                group,
                "ItemRef",
                ItemOID=item_oid(form, column.name),
                OrderNumber=str(number),
                Mandatory="No",
            )
    code_lists = []
    for form in FORMS:
        for column in _items(form):
            attrib = {"OID": item_oid(form, column.name), "Name": column.name}
            attrib["DataType"] = DATA_TYPES[column.kind]
            if column.kind == Kind.TEXT and column.max_length:
                attrib["Length"] = str(column.max_length)
            item = _el(mdv, "ItemDef", **attrib)
            if column.description:
                _translated(item, "Description", column.description)
            _translated(item, "Question", column.label)
            if column.unit:
                _el(item, "MeasurementUnitRef", MeasurementUnitOID=units[column.unit])
            codes = [(code, text) for code, text in column_codes(form.name, column) if code != ""]
            if codes:
                _el(item, "CodeListRef", CodeListOID=code_list_oid(form, column.name))
                code_lists.append((form, column, codes))
    for form, column, codes in code_lists:
        data_type = "integer" if column.kind == Kind.INTEGER else "text"
        code_list = _el(
            mdv,
            "CodeList",
            OID=code_list_oid(form, column.name),
            Name=f"{form.name}.{column.name}",
            DataType=data_type,
        )
        for number, (code, text) in enumerate(codes, start=1):
            entry = _el(code_list, "CodeListItem", CodedValue=str(code), OrderNumber=str(number))
            _translated(entry, "Decode", text)
    return root


def admin_element(
    study: Study | None, *, site_codes: list[str], users: list[tuple[int, str]], audit: bool
) -> etree._Element:
    """AdminData: the Users of the audit trail (with `audit`) and a Location per site."""
    root = etree.Element(_tag("AdminData"), StudyOID=_study_oid(study), nsmap={None: NS})
    if audit:
        unknown = _el(root, "User", OID=UNKNOWN_USER_OID, UserType="Other")
        _el(unknown, "LoginName", "(no user recorded)")
        for pk, username in users:
            _el(_el(root, "User", OID=user_oid(pk)), "LoginName", username)
    names = dict(Site.objects.filter(code__in=site_codes).values_list("code", "name"))
    effective = timezone.localdate().isoformat()
    for code in site_codes:
        location = _el(
            root,
            "Location",
            OID=location_oid(code),
            Name=names.get(code, code),
            LocationType="Site",
        )
        _el(
            location,
            "MetaDataVersionRef",
            StudyOID=_study_oid(study),
            MetaDataVersionOID=MDV_OID,
            EffectiveDate=effective,
        )
    return root


def _value(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return csv_value(value)


def _audit_record(parent, *, user_id, site_code, at: datetime, reason: str, **attrib):
    """An AuditRecord under `parent`, or a standalone one when `parent` is None."""
    if parent is None:
        record = etree.Element(_tag("AuditRecord"), attrib, nsmap={None: NS})
    else:
        record = _el(parent, "AuditRecord", **attrib)
    _el(record, "UserRef", UserOID=user_oid(user_id))
    _el(record, "LocationRef", LocationOID=location_oid(site_code))
    _el(record, "DateTimeStamp", timezone.localtime(at).isoformat())
    if reason:
        _el(record, "ReasonForChange", reason)
    return record


def _history(form: ExportForm, *, patients_qs: QuerySet, extra: tuple[str, ...] = ()):
    """The history rows of `form`'s records of these patients, ordered by patient, record and
    time: (patient id, record id, history id, date, user id, reason, type, version, *extra)."""
    history = form.model.history.model
    patient = form.patient_id_lookup
    return (
        history.objects.filter(**{f"{patient}__in": patients_qs.values("pk")})
        .order_by(patient, "id", "history_date", "history_id")
        .values_list(
            patient,
            "id",
            "history_id",
            "history_date",
            "history_user_id",
            "history_change_reason",
            "history_type",
            "version",
            *extra,
        )
        .iterator(chunk_size=2000)
    )


def _subject_element(patient_rows: dict, latest: dict, *, audit: bool) -> etree._Element:
    patient = patient_rows.get("patients", [None])[0]
    subject_code = next(iter(patient_rows.values()))[0]["subject_code"]
    site_code = patient["site"] if patient else None
    subject = etree.Element(_tag("SubjectData"), SubjectKey=subject_code, nsmap={None: NS})
    if site_code:
        _el(subject, "SiteRef", LocationOID=location_oid(site_code))
    for phase in _phases():
        forms = [f for f in FORMS if f.phase == phase and f.name in patient_rows]
        if not forms:
            continue
        event = _el(subject, "StudyEventData", StudyEventOID=event_oid(phase))
        for form in forms:
            form_data = _el(event, "FormData", FormOID=form_oid(form))
            items = _items(form)
            for row in patient_rows[form.name]:
                group = _el(
                    form_data,
                    "ItemGroupData",
                    ItemGroupOID=item_group_oid(form),
                    ItemGroupRepeatKey=str(row["id"]),
                )
                change = latest.get((form.name, row["id"])) if audit else None
                if change is not None and site_code:
                    _user, _at, _reason = change
                    _audit_record(group, user_id=_user, site_code=site_code, at=_at, reason=_reason)
                for column in items:
                    value = _value(row[column.name])
                    if value is not None:
                        _el(group, "ItemData", ItemOID=item_oid(form, column.name), Value=value)
    return subject


def _tagged(items, kind: int, index: int, *, key):
    """(patient id, kind, table index, item) for the merge (a function: a generator
    expression in the loop would see the loop's last index)."""
    for item in items:
        yield (item[key], kind, index, item)


def odm_stream(
    *,
    patients_qs: QuerySet,
    include_audit: bool = False,
    date_shift: bool = False,
    hasher: ContentHash | None = None,
) -> Iterator[bytes]:
    """The ODM document as UTF-8 chunks (see the module docstring). `hasher` (a ContentHash)
    receives the rows as they are written; the data version is also in a closing comment.
    Audit records carry real timestamps, so `include_audit` with `date_shift` raises
    ValueError."""
    if include_audit and date_shift:
        raise ValueError("Audit records carry real dates: they cannot be date-shifted.")
    hasher = hasher if hasher is not None else ContentHash()
    study = _study()
    created = timezone.localtime()
    latest_change = as_of(patients_qs=patients_qs)
    site_codes = sorted(set(patients_qs.values_list("site__code", flat=True)))
    audited_forms = [f for f in FORMS if f.audited]
    users: list[tuple[int, str]] = []
    if include_audit:
        user_ids: set[int] = set()
        for form in audited_forms:
            user_ids |= set(
                form.model.history.model.objects.filter(
                    **{f"{form.patient_id_lookup}__in": patients_qs.values("pk")},
                    history_user__isnull=False,
                )
                .order_by()
                .values_list("history_user_id", flat=True)
                .distinct()
            )
        users = list(
            get_user_model()
            .objects.filter(pk__in=user_ids)
            .order_by("pk")
            .values_list("pk", "username")
        )

    buffer = io.BytesIO()

    def drain() -> bytes:
        data = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return data

    attrib = {
        "FileType": "Snapshot",
        "FileOID": f"PLM-EDC.{_study_oid(study)}.{created:%Y%m%dT%H%M%S%f}",
        "CreationDateTime": created.isoformat(),
        "ODMVersion": "1.3.2",
        "Originator": "PLM-EDC",
        "SourceSystem": "PLM-EDC",
        "Description": "Snapshot with audit records"
        if include_audit
        else ("Snapshot, dates shifted per patient" if date_shift else "Snapshot"),
    }
    if latest_change is not None:
        attrib["AsOfDateTime"] = latest_change.isoformat()

    with etree.xmlfile(buffer, encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element(_tag("ODM"), attrib, nsmap={None: NS}):
            xf.write(study_element(study))
            xf.write(admin_element(study, site_codes=site_codes, users=users, audit=include_audit))
            xf.flush()
            yield drain()
            clinical = {"StudyOID": _study_oid(study), "MetaDataVersionOID": MDV_OID}
            with xf.element(_tag("ClinicalData"), clinical):
                streams = []
                for index, form in enumerate(FORMS):
                    rows = export_rows(
                        form,
                        patients_qs=patients_qs,
                        date_shift=date_shift,
                        hasher=hasher,
                        by_patient_id=True,
                        with_patient_id=True,
                    )
                    streams.append(_tagged(rows, 0, index, key="_patient_id"))
                    if include_audit and form.audited:
                        history = _history(form, patients_qs=patients_qs)
                        streams.append(_tagged(history, 1, index, key=0))
                merged = heapq.merge(*streams, key=lambda item: (item[0], item[1], item[2]))
                for _patient_id, items in itertools.groupby(merged, key=lambda item: item[0]):
                    patient_rows: dict[str, list[dict]] = defaultdict(list)
                    latest: dict[tuple[str, int], tuple] = {}
                    for _pid, kind, index, payload in items:
                        name = FORMS[index].name
                        if kind == 0:
                            patient_rows[name].append(payload)
                        else:
                            _p, record_id, _h, at, user_id, reason, *_rest = payload
                            latest[(name, record_id)] = (user_id, at, reason or "")
                    if patient_rows:
                        xf.write(_subject_element(patient_rows, latest, audit=include_audit))
                    if buffer.tell() > FLUSH_BYTES:
                        xf.flush()
                        yield drain()
                if include_audit:
                    with xf.element(_tag("AuditRecords")):
                        for form in audited_forms:
                            extra = (
                                f"{form.patient_id_lookup}__subject_code"
                                if form.patient
                                else "subject_code",
                                f"{form.patient_id_lookup}__site__code"
                                if form.patient
                                else "site__code",
                            )
                            for entry in _history(form, patients_qs=patients_qs, extra=extra):
                                _p, record_id, history_id, at, user_id, reason, kind = entry[:7]
                                version, subject_code, site_code = entry[7:]
                                record = _audit_record(
                                    None,
                                    user_id=user_id,
                                    site_code=site_code,
                                    at=at,
                                    reason=reason or "",
                                    ID=f"AR.{form.name}.{history_id}",
                                    EditPoint="DataManagement",
                                )
                                _el(
                                    record,
                                    "SourceID",
                                    f"{subject_code} {form.name} {record_id} v{version} "
                                    f"{HISTORY_ACTIONS.get(kind, kind)}",
                                )
                                xf.write(record)
                                if buffer.tell() > FLUSH_BYTES:
                                    xf.flush()
                                    yield drain()
            digest = hasher.hexdigest([form.name for form in FORMS])
            xf.write(etree.Comment(f" data version sha256:{digest} (analytics.exports.version) "))
    yield drain()


def odm_document(
    *, patients_qs: QuerySet, include_audit: bool = False, date_shift: bool = False
) -> bytes:
    """The whole ODM document in memory (for tests and small cohorts; endpoints stream
    `odm_stream`)."""
    return b"".join(
        odm_stream(patients_qs=patients_qs, include_audit=include_audit, date_shift=date_shift)
    )
