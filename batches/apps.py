from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = "Batches, cells and traceability"

    def ready(self) -> None:
        # Registers the tasks in every process: services send them by name, and an eager
        # Celery (tests) runs a task only when it is registered.
        from batches import tasks  # noqa: F401
