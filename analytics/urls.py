"""The analysis pages under /analytics/ (included in config/urls.py); the JSON API is under
/api/v1/analytics/ (analytics/api/)."""

from django.urls import path

from analytics import views

app_name = "analytics"
urlpatterns = [
    path("", views.study_dashboard, name="dashboard"),
    path("patients/", views.stage_patients, name="stage-patients"),
    path("survival/", views.survival_page, name="survival"),
    path("survival.<str:fmt>", views.survival_figure, name="survival-figure"),
    path("surgery-effect/", views.surgery_effect_page, name="surgery-effect"),
    path("surgery-effect.<str:fmt>", views.surgery_effect_figure, name="surgery-effect-figure"),
    path("swimmer/", views.swimmer_page, name="swimmer"),
    path("swimmer.<str:fmt>", views.swimmer_figure, name="swimmer-figure"),
    path("waterfall/", views.waterfall_page, name="waterfall"),
    path("waterfall.<str:fmt>", views.waterfall_figure, name="waterfall-figure"),
    path("exports/log/", views.export_log_page, name="export-log"),
]
