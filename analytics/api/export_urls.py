"""/api/v1/exports/: the statisticians' exports (analytics.api.exports), included by
config/api.py."""

from django.urls import path

from analytics.api import exports

app_name = "exports_api"

urlpatterns = [
    path("analysis-dataset/", exports.AnalysisDatasetExport.as_view(), name="analysis-dataset"),
    path("forms/<str:form>/", exports.FormExport.as_view(), name="form"),
    path("codebook/", exports.CodebookExport.as_view(), name="codebook"),
    path("odm/", exports.OdmExport.as_view(), name="odm"),
]
