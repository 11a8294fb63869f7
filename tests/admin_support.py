"""Helpers for the admin screen tests: staff users with chosen permissions, logged in to the test client."""

from __future__ import annotations

import csv
import io

from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from tests.factories import UserFactory


def staff_login(client, org, *, codenames: list[str] | None = None, group: str | None = None):
    """Log `client` in as a staff user of `org`: every permission, only `codenames`, or only `group`'s."""
    user = UserFactory(org=org)
    if group is not None:
        user.groups.add(Group.objects.get(name=group))
    elif codenames is None:
        user.user_permissions.set(Permission.objects.all())
    else:
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def admin_url(model, view: str = "changelist", *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def csv_rows(response) -> list[dict]:
    """The rows of a streamed CSV response, as dicts keyed by its header."""
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def csv_header(response) -> list[str]:
    text = b"".join(response.streaming_content).decode()
    return next(csv.reader(io.StringIO(text)))
