from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MesConfig(AppConfig):
    name = "mes"
    verbose_name = "MES"

    def ready(self) -> None:
        from mes.lookups import register
        from mes.roles import sync_roles

        register()

        # After the batches app's post_migrate (its last app): by then Django has created the
        # built-in permissions of every model the roles name.
        post_migrate.connect(
            _after_batches_migrated(sync_roles),
            dispatch_uid="mes.roles.sync_roles",
            weak=False,  # the receiver is a closure: nothing else keeps it alive
        )


def _after_batches_migrated(sync):
    def receiver(sender: AppConfig, **kwargs) -> None:
        if sender.label == "batches":
            sync(**kwargs)

    return receiver
