from django.apps import AppConfig


class RedemptionsConfig(AppConfig):
    name = "redemptions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The wallet shows how much of each limit is used; the lines that say so are ours, and the
        # wallet must not import the app built on it, so the counting is handed to it here.
        from redemptions.cart_locks import instance_units_reserved
        from redemptions.selectors import restriction_usage_count, window_used_reserved
        from wallets.selectors import (
            instance_reserved_counter_register,
            restriction_usage_counter_register,
            window_usage_counter_register,
        )

        restriction_usage_counter_register(restriction_usage_count)
        # What the wallet shows as remaining subtracts what open carts reserve (docs/cart-locks.md).
        window_usage_counter_register(window_used_reserved)
        instance_reserved_counter_register(instance_units_reserved)
        # The opt-out (737) asks whether a pending cart holds the promotion: carts are ours.
        from redemptions.cart_locks import pending_cart_holds
        from wallets.services import pending_cart_check_register

        pending_cart_check_register(pending_cart_holds)
        from redemptions import tasks  # noqa: F401  queued and scheduled by name: registered in every process
