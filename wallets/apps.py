from django.apps import AppConfig


def _earned_promotions_redate(sender, *, promotion, **kwargs) -> int:
    from wallets.services import earned_promotions_redate

    return earned_promotions_redate(promotion=promotion)


class WalletsConfig(AppConfig):
    name = "wallets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The catalogue (promotions) must not call the wallet that builds on it: the wallet listens.
        from promotions.signals import promotion_dates_changed
        from promotions_site.metrics import app_collector_register
        from wallets import tasks  # noqa: F401  services queue them by name: registered in every process
        from wallets.metrics import BulkJobCollector

        promotion_dates_changed.connect(_earned_promotions_redate, dispatch_uid="wallets.earned_redate")
        app_collector_register(BulkJobCollector())
