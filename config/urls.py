from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from config import api, health
from trial.views_accounts import LoginView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="patients:patient-list"), name="home"),
    # The password step; with a TOTP device the code step (accounts:verify) finishes the login.
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("trial.urls_accounts")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("patients/", include("patients.urls")),
    path("patients/", include("treatments.urls")),
    path("patients/", include("assessments.urls")),
    path("patients/", include("surgery.urls")),
    path("patients/", include("followup.urls")),
    path("biobank/", include("biobank.urls")),
    path("visits/", include("visits.urls")),
    path("exchange/", include("exchange.urls")),
    path("quality/", include("trial.urls")),
    path("analytics/", include("analytics.urls")),
    path("api/v1/", include("config.api")),
    path("api/", include(api.docs_urlpatterns)),
    path("admin/", admin.site.urls),
    path("health/", health.health, name="health"),
]
