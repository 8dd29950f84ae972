from django.apps import AppConfig


class StationsConfig(AppConfig):
    name = "stations"
    verbose_name = "Station intake"

    def ready(self) -> None:
        # Registers the workers' tasks in every process: dispatch sends them by name, and an
        # eager Celery (tests) runs a task only when it is registered.
        from stations import tasks  # noqa: F401
