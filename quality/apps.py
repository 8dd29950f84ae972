from django.apps import AppConfig
from django.db.models.signals import post_migrate


class QualityConfig(AppConfig):
    name = "quality"
    verbose_name = "Quality"

    def ready(self) -> None:
        from batches import hooks
        from quality.first_versions import put_first_versions_in_force
        from quality.grading import grade_completed_cell
        from quality.hooks import fire_hold_rules

        hooks.on_after_step(fire_hold_rules)
        hooks.on_route_completed(grade_completed_cell)
        # Once per migrate (this app's post_migrate), after every table exists.
        post_migrate.connect(
            put_first_versions_in_force, sender=self, dispatch_uid="quality.first_versions"
        )
