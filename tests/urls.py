"""URLs of the test suite: the admin and our JSON views."""

from django.contrib import admin
from django.urls import include, path

from django_celery_results.metrics import metrics_view
from tests.aio_views import task_result

urlpatterns = [
    path("admin/", admin.site.urls),
    path("results/", include("django_celery_results.urls")),
    path("aio/<str:task_id>/", task_result),
    path("metrics/", metrics_view),
]
