from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core.db_roles import sync_runtime_role
        from core.lookups import register
        from core.roles import sync_roles

        register()
        post_migrate.connect(
            _after_last_app_migrated(sync_roles),
            dispatch_uid="core.roles.sync_roles",
            weak=False,  # the receiver is a closure: nothing else keeps it alive
        )
        # Once every table exists: the privileges of the role gunicorn and the workers use.
        post_migrate.connect(
            _after_last_app_migrated(sync_runtime_role),
            dispatch_uid="core.db_roles.sync_runtime_role",
            weak=False,
        )


def _after_last_app_migrated(sync):
    """After the post_migrate of the last app with models: by then Django has created the
    built-in permissions of every model the roles name."""

    def receiver(sender: AppConfig, **kwargs) -> None:
        with_models = [config for config in apps.get_app_configs() if config.models_module]
        if sender is with_models[-1]:
            sync(**kwargs)

    return receiver
