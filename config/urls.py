from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from config import api, health

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="patients:patient-list"), name="home"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
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
