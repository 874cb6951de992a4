"""URLs defined for celery (placeholder until views land)."""

urlpatterns: list[object] = []
