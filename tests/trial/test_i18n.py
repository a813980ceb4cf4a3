"""English and Simplified Chinese: the catalogue is complete and compiled, and pages switch."""

from pathlib import Path

import polib
from django.conf import settings
from django.utils import translation

from tests.factories.patients import enrolled_patient

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"


def test_every_message_is_translated_and_none_is_fuzzy():
    po = polib.pofile(str(CATALOGUE / "django.po"))
    assert len(po) > 300
    assert [e.msgid for e in po.untranslated_entries()] == []
    assert [e.msgid for e in po.fuzzy_entries()] == []


def test_the_compiled_catalogue_matches_the_source():
    po = polib.pofile(str(CATALOGUE / "django.po"))
    mo = polib.mofile(str(CATALOGUE / "django.mo"))
    compiled = {(e.msgctxt, e.msgid): e.msgstr or e.msgstr_plural for e in mo}
    source = {
        (e.msgctxt, e.msgid): e.msgstr or {int(k): v for k, v in e.msgstr_plural.items()}
        for e in po.translated_entries()
    }
    stale = [key for key, value in source.items() if compiled.get(key) != value]
    assert stale == [], "run `make messages` (compilemessages) after editing django.po"


def test_the_language_switcher_turns_pages_into_chinese(client_for, coordinator, site_a):
    patient = enrolled_patient(site=site_a, user=coordinator)
    client = client_for(coordinator)
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/patients/"})
    assert response.status_code == 302
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "入选资格" in page  # "Eligibility"
    assert "受试者编号" in client.get("/patients/").content.decode()  # "Subject code"
    client.post("/i18n/setlang/", {"language": "en", "next": "/patients/"})
    assert "Eligibility" in client.get(f"/patients/{patient.pk}/").content.decode()


def test_validation_messages_are_translated():
    with translation.override("zh-hans"):
        from django.utils.translation import gettext

        assert gettext("This patient is already enrolled.") == "该患者已入组。"
