"""URLs: the admin, and the JSON views of django_celery_results."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("results/", include("django_celery_results.urls")),
]
