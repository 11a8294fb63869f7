"""Create an org (if needed) and an API client, and print its credentials once."""

from __future__ import annotations

import base64
import hashlib

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from promotions.models import ApiClient, Organization
from promotions.services import api_client_create, organization_create


class Command(BaseCommand):
    help = "Create an API client for an org (creating the org when --org-name is given) and print its credentials."

    def add_arguments(self, parser):
        parser.add_argument(
            "--org-id", type=int, help="orgId; with --org-name and no --org-id, the next free id."
        )
        parser.add_argument("--org-name", help="Create the org with this name if it does not exist.")
        parser.add_argument(
            "--timezone", default="UTC", help="Time zone of a newly created org (default UTC)."
        )
        parser.add_argument("--username", required=True, help="Basic-auth username / OAuth key (unique).")
        parser.add_argument("--access", choices=ApiClient.Access.values, default=ApiClient.Access.WRITE)
        parser.add_argument("--secret", help="Use this secret instead of generating a random one.")
        parser.add_argument("--token-ttl", type=int, default=None, help="OAuth token lifetime, 60 to 3600 s.")

    def handle(self, *args, **options):
        org = Organization.objects.filter(pk=options["org_id"]).first() if options["org_id"] else None
        try:
            if org is None:
                if not options["org_name"]:
                    raise CommandError(f"No organization {options['org_id']}; pass --org-name to create it.")
                org = organization_create(
                    name=options["org_name"], org_id=options["org_id"], timezone_name=options["timezone"]
                )
                self.stdout.write(f"Created organization {org.pk} ({org.name}).")
            client, secret = api_client_create(
                org=org,
                username=options["username"],
                access=options["access"],
                secret=options["secret"],
                token_ttl_seconds=options["token_ttl"],
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.message_dict.items())
            ) from exc
        except IntegrityError as exc:
            raise CommandError(f"Could not create the client: {exc}") from exc

        md5 = hashlib.md5(secret.encode()).hexdigest()
        basic = base64.b64encode(f"{client.username}:{secret}".encode()).decode()
        self.stdout.write(
            "\n".join(
                [
                    f"orgId:      {org.pk}",
                    f"username:   {client.username}",
                    f"secret:     {secret}",
                    f"secret MD5: {md5}",
                    f"access:     {client.access}",
                    f"Authorization: Basic {basic}",
                    "The secret is shown only now; only a keyed hash of it is stored.",
                ]
            )
        )
