"""The "Auditors" group: staff in it view (and export) every audit screen of their org, and change nothing.

A data migration, so every database has the group without a manual step; running it again (or on a
database where someone already made the group) only adds what is missing. It lives in the redemptions
app because that app's migrations come after the promotions and wallets ones it grants views of.
Deliberately left out: change/add/delete of anything, `redemptions.reverse_redemption`, any
permission to run bulk jobs, and the staff users and API clients of the org.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP_NAME = "Auditors"
VIEW_PERMISSIONS = {
    "promotions": [
        "view_organization",
        "view_promotion",
        "view_promotionrestriction",
        "view_loyaltyprogram",
        "view_loyaltypromotion",
        "view_auditevent",
    ],
    "wallets": [
        "view_customer",
        "view_earnedpromotion",
        "view_issual",
        "view_loyaltyearnedpromotion",
        "view_bulkjob",
        "view_bulkjobitem",
    ],
    "redemptions": [
        "view_redemption",
        "view_redemptionline",
        "view_redemptionreversal",
        "view_redemptioncounter",
    ],
}


def auditors_group_create(apps, schema_editor):
    # Permissions are normally created after the last migration (post_migrate); create them now.
    for app_config in apps.get_app_configs():
        models_module, app_config.models_module = getattr(app_config, "models_module", None), True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP_NAME)
    wanted = [(app, codename) for app, codenames in VIEW_PERMISSIONS.items() for codename in codenames]
    permissions = []
    for app_label, codename in wanted:
        permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        if permission is None:
            raise RuntimeError(f"Permission {app_label}.{codename} does not exist.")
        permissions.append(permission)
    group.permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("promotions", "0002_drop_promotion_restrictions_json"),
        ("wallets", "0002_bulk_jobs"),
        ("redemptions", "0005_reverse_permission"),
    ]

    # Reversing keeps the group: staff may have been put in it since.
    operations = [migrations.RunPython(auditors_group_create, migrations.RunPython.noop)]
