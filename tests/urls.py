"""URLs of the test suite: the admin and our JSON views."""

from django.contrib import admin
from django.urls import include, path

from tests.aio_views import task_result

urlpatterns = [
    path("admin/", admin.site.urls),
    path("results/", include("django_celery_results.urls")),
    path("aio/<str:task_id>/", task_result),
]
