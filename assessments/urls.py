from assessments.urls_imaging import urlpatterns as imaging_patterns
from assessments.urls_labs import urlpatterns as lab_patterns

app_name = "assessments"
urlpatterns = [*lab_patterns, *imaging_patterns]
