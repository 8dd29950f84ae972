from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LinesConfig(AppConfig):
    name = "lines"
    verbose_name = "Lines, stations and recipes"

    def ready(self) -> None:
        from lines.performance import seed_downtime_reasons

        # The catalogue of downtime reasons exists from migrate on (and after a test flush).
        post_migrate.connect(
            seed_downtime_reasons, sender=self, dispatch_uid="lines.seed_downtime_reasons"
        )
