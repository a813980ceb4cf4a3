"""The CDISC ODM 1.3.2 export: valid against the official XSD (shipped by odmlib), every OID
reference resolving to a definition (the XSD does not check that), no PHI, labels and code-list
decodes in English and Chinese, audit records from the history."""

from functools import cache
from pathlib import Path

import odmlib
import pytest
from lxml import etree

from analytics.exports import odm
from analytics.exports.forms import FORMS
from analytics.exports.streams import odm_export
from analytics.exports.version import data_version
from analytics.models import ExportLog
from patients.models import Patient
from tests.analytics.test_exports import PHI, full_patient, second_patient

pytestmark = pytest.mark.django_db

NS = {"odm": odm.NS}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Attribute that references → (element that defines, its key attribute).
REFERENCES = {
    "StudyEventOID": ("StudyEventDef", "OID"),
    "FormOID": ("FormDef", "OID"),
    "ItemGroupOID": ("ItemGroupDef", "OID"),
    "ItemOID": ("ItemDef", "OID"),
    "CodeListOID": ("CodeList", "OID"),
    "MeasurementUnitOID": ("MeasurementUnit", "OID"),
    "MetaDataVersionOID": ("MetaDataVersion", "OID"),
    "StudyOID": ("Study", "OID"),
    "UserOID": ("User", "OID"),
    "LocationOID": ("Location", "OID"),
}


@cache
def schema() -> etree.XMLSchema:
    path = Path(odmlib.__file__).parent / "schemas" / "odm" / "1.3.2" / "ODM1-3-2.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


def unresolved_references(root: etree._Element) -> list[str]:
    """Every *OID reference of the document that no definition carries (walks the tree)."""
    defined: dict[str, set[str]] = {}
    for element in root.iter(etree.Element):
        name = etree.QName(element).localname
        for _attribute, (definer, key) in REFERENCES.items():
            if name == definer and element.get(key):
                defined.setdefault(definer, set()).add(element.get(key))
    missing = []
    for element in root.iter(etree.Element):
        name = etree.QName(element).localname
        for attribute, value in element.attrib.items():
            if attribute not in REFERENCES:
                continue
            definer, _key = REFERENCES[attribute]
            if name == definer:  # the definition itself (e.g. Study/@OID is not a reference)
                continue
            if value not in defined.get(definer, set()):
                missing.append(f"{name}/@{attribute}={value}")
    return missing


@pytest.fixture
def cohort(site_a, investigator):
    return full_patient(site_a, investigator), second_patient(site_a, investigator)


def _document(**options) -> etree._Element:
    data = odm.odm_document(patients_qs=Patient.objects.active(), **options)
    return etree.fromstring(data)


@pytest.mark.parametrize("include_audit", [False, True], ids=["snapshot", "with-audit"])
def test_the_document_validates_against_the_odm_1_3_2_schema(cohort, include_audit):
    root = _document(include_audit=include_audit)
    valid = schema().validate(root)
    assert valid, "\n".join(str(e) for e in schema().error_log[:10])
    assert root.get("ODMVersion") == "1.3.2"
    assert root.get("FileType") == "Snapshot"
    assert root.get("AsOfDateTime")
    subjects = root.findall("odm:ClinicalData/odm:SubjectData", NS)
    assert [s.get("SubjectKey") for s in subjects] == [p.subject_code for p in cohort]


def test_the_date_shifted_document_validates_too(cohort):
    root = _document(date_shift=True)
    assert schema().validate(root), schema().error_log


def test_every_oid_reference_resolves(cohort):
    root = _document(include_audit=True)
    assert unresolved_references(root) == []
    # The check walks every reference kind this document uses.
    used = {a for e in root.iter(etree.Element) for a in e.attrib if a in REFERENCES}
    assert used >= {
        "StudyEventOID",
        "FormOID",
        "ItemGroupOID",
        "ItemOID",
        "CodeListOID",
        "MeasurementUnitOID",
        "MetaDataVersionOID",
        "UserOID",
        "LocationOID",
    }


@pytest.mark.parametrize(
    ("xpath", "attribute"),
    [
        ("//odm:ItemData", "ItemOID"),
        ("//odm:CodeListRef", "CodeListOID"),
        ("//odm:FormData", "FormOID"),
        ("//odm:AuditRecord/odm:UserRef", "UserOID"),
        ("//odm:SiteRef", "LocationOID"),
    ],
)
def test_the_reference_check_fails_on_a_broken_reference(cohort, xpath, attribute):
    root = _document(include_audit=True)
    target = root.xpath(xpath, namespaces=NS)[0]
    target.set(attribute, target.get(attribute) + ".BROKEN")
    assert unresolved_references(root) == [
        f"{etree.QName(target).localname}/@{attribute}={target.get(attribute)}"
    ]
    # The XSD alone accepts the broken document: this is why the check exists.
    assert schema().validate(root)


def test_no_phi_in_the_document(cohort):
    first, _second = cohort
    assert first.identity.full_name == PHI["full_name"]
    for options in ({}, {"include_audit": True}, {"date_shift": True}):
        text = odm.odm_document(patients_qs=Patient.objects.active(), **options).decode()
        for value in PHI.values():
            assert str(value) not in text, (options, value)
        assert "Drain output reviewed" not in text  # a free-text field
        assert "Talked to" not in text


def test_items_and_code_lists_are_labelled_in_english_and_chinese(cohort):
    root = _document()
    mdv = root.find("odm:Study/odm:MetaDataVersion", NS)
    items = mdv.findall("odm:ItemDef", NS)
    assert len(items) == sum(
        len([c for c in f.columns if c.name not in odm.NOT_ITEMS]) for f in FORMS
    )
    for item in items:
        langs = [t.get(XML_LANG) for t in item.findall("odm:Question/odm:TranslatedText", NS)]
        assert langs == ["en", "zh"], item.get("OID")
    for code_item in mdv.findall("odm:CodeList/odm:CodeListItem", NS):
        texts = code_item.findall("odm:Decode/odm:TranslatedText", NS)
        assert [t.get(XML_LANG) for t in texts] == ["en", "zh"]
    operated = mdv.find("odm:ItemDef[@OID='IT.OPERATIONS.OPERATED_ON']/odm:Question", NS)
    assert [t.text for t in operated] == ["date of operation", "手术日期"]
    cause = mdv.find(
        "odm:CodeList[@OID='CL.DEATHS.CAUSE']/odm:CodeListItem[@CodedValue='progression']", NS
    )
    assert [t.text for t in cause.find("odm:Decode", NS)] == ["Disease progression", "疾病进展"]


def test_clinical_data_carries_codes_and_repeat_keys(cohort):
    first, _second = cohort
    root = _document()
    subject = root.find(f"odm:ClinicalData/odm:SubjectData[@SubjectKey='{first.subject_code}']", NS)
    assert subject.find("odm:SiteRef", NS).get("LocationOID") == f"LOC.{first.site.code}"
    complication = subject.find(".//odm:ItemGroupData[@ItemGroupOID='IG.COMPLICATIONS']", NS)
    values = {i.get("ItemOID"): i.get("Value") for i in complication.findall("odm:ItemData", NS)}
    assert values["IT.COMPLICATIONS.KIND"] == "popf"
    assert values["IT.COMPLICATIONS.ISGPS_GRADE"] == "B"
    results = subject.findall(".//odm:ItemGroupData[@ItemGroupOID='IG.LAB_RESULTS']", NS)
    assert len(results) == 2
    assert len({r.get("ItemGroupRepeatKey") for r in results}) == 2


def test_audit_records_come_from_the_history(cohort, investigator):
    first, _second = cohort
    root = _document(include_audit=True)
    trail = root.findall("odm:ClinicalData/odm:AuditRecords/odm:AuditRecord", NS)
    reasons = [r.findtext("odm:ReasonForChange", namespaces=NS) for r in trail]
    assert "ECOG corrected" in reasons
    baseline = root.find(
        f".//odm:SubjectData[@SubjectKey='{first.subject_code}']"
        "//odm:ItemGroupData[@ItemGroupOID='IG.BASELINE']/odm:AuditRecord",
        NS,
    )
    assert baseline.find("odm:UserRef", NS).get("UserOID") == f"USR.{investigator.pk}"
    assert baseline.findtext("odm:ReasonForChange", namespaces=NS) == "ECOG corrected"
    users = root.findall("odm:AdminData/odm:User", NS)
    assert investigator.username in [u.findtext("odm:LoginName", namespaces=NS) for u in users]


def test_audit_records_cannot_be_date_shifted(cohort):
    with pytest.raises(ValueError, match="cannot be date-shifted"):
        odm.odm_document(patients_qs=Patient.objects.active(), include_audit=True, date_shift=True)


def test_the_odm_export_is_logged_with_the_same_data_version(cohort, statistician):
    from analytics.exports.forms import export_patients

    patients = export_patients(user=statistician)
    export = odm_export(user=statistician, patients_qs=patients)
    body = b"".join(export.chunks)
    log = ExportLog.objects.get(what="odm")
    stated = data_version(patients_qs=patients)
    assert log.data_version == stated["hash"]
    assert log.row_count == stated["rows"]
    assert f"sha256:{stated['hash']}".encode() in body
