"""The REST API at /api/v1/ (included by config/urls.py): one router for the apps' read-only
exports and the analytics endpoints. A breaking change adds /api/v2/ beside this one.

Shared policies (JSON only, session authentication, permission and throttle defaults, JSON
errors keyed by the parameter to fix) are in REST_FRAMEWORK (config/settings/base.py) and
config/api_policies.py.
"""

from django.urls import include, path
from rest_framework import routers

# Read-only export ViewSets of the apps register here (CONVENTIONS.md, "REST API").
router = routers.SimpleRouter()

urlpatterns = [
    path("analytics/", include("analytics.api.urls")),
    *router.urls,
]
