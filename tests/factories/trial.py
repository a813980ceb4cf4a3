import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from trial.models import Site, SiteMembership, Study
from trial.roles import sync_role_groups


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study
        django_get_or_create = ["code"]

    code = "NCT06873178"
    title = "The Significance and Indications of Surgery for Synchronous Liver Metastatic Cancer"


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site
        django_get_or_create = ["code"]

    study = factory.SubFactory(StudyFactory)
    code = factory.Sequence(lambda n: f"S{n:03d}")
    name = factory.LazyAttribute(lambda o: f"Hospital {o.code}")


class UserFactory(factory.django.DjangoModelFactory):
    """A user; `roles=[...]` puts them in the role groups, `sites=[...]` gives memberships."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("test-password-123")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if not (create and extracted):
            return
        if not Group.objects.filter(name__in=extracted).exists():
            sync_role_groups()
        for role in extracted:
            self.groups.add(Group.objects.get(name=role))

    @factory.post_generation
    def sites(self, create, extracted, **kwargs):
        if create and extracted:
            for site in extracted:
                SiteMembership.objects.get_or_create(user=self, site=site)
