"""/api/v1/records/: the write endpoints of the records other systems send (exchange.api.views),
one collection and one item path per form, included by config/api.py."""

from django.urls import path

from exchange.api.views import VIEWS

app_name = "records_api"

urlpatterns = [
    route
    for name, (collection, item) in VIEWS.items()
    for route in (
        path(f"{name}/", collection, name=f"{name}-list"),
        path(f"{name}/<str:id>/", item, name=f"{name}-item"),
    )
]
