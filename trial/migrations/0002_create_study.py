"""Create the study this EDC serves and its first site (data migration)."""

from django.db import migrations

STUDY = {
    "code": "NCT06873178",
    "title": (
        "The Significance and Indications of Surgery for Synchronous Liver Metastatic "
        "Pancreatic Cancer"
    ),
    "title_zh": "同时性肝转移胰腺癌手术的意义及适应证研究",
    "sponsor": "China-Japan Friendship Hospital",
}
SITE = {
    "code": "CJFH",
    "name": "China-Japan Friendship Hospital",
    "name_zh": "中日友好医院",
}


def create(apps, schema_editor):
    Study = apps.get_model("trial", "Study")
    Site = apps.get_model("trial", "Site")
    study, _ = Study.objects.get_or_create(code=STUDY["code"], defaults=STUDY)
    Site.objects.get_or_create(code=SITE["code"], defaults={**SITE, "study": study})


def remove(apps, schema_editor):
    # Sites may already hold patients (PROTECT): leave the rows in place when unapplying.
    pass


class Migration(migrations.Migration):
    dependencies = [("trial", "0001_initial")]
    operations = [migrations.RunPython(create, remove)]
