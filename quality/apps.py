from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "quality"
    verbose_name = "Quality"

    def ready(self) -> None:
        from batches import hooks
        from quality.grading import grade_completed_cell
        from quality.hooks import fire_hold_rules

        hooks.on_after_step(fire_hold_rules)
        hooks.on_route_completed(grade_completed_cell)
