from __future__ import annotations

import logging
from typing import Any

from django.apps import AppConfig

logger = logging.getLogger("accounts")


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from axes.signals import user_locked_out

        # settings.AXES_VERBOSE is off (its start-up line would open every command's output);
        # a lockout is still worth a line in the log.
        user_locked_out.connect(_log_lockout, dispatch_uid="accounts.log_lockout")


def _log_lockout(sender: Any, request: Any = None, username: str = "", **kwargs: Any) -> None:
    logger.warning(
        "Sign-in locked out after repeated failures: username %r from %s",
        username,
        kwargs.get("ip_address", "?"),
    )
