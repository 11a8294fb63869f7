"""Who performs a write (`Actor`) and the audit trail every write appends to.

Every app's services record their writes here, so this module imports no service of any app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from promotions.models import ApiClient, AuditEvent, Organization
from promotions_site.request_context import current_request_id


@dataclass(frozen=True)
class Actor:
    """Who performs a write: an API client, an admin user, or the system (jobs, commands)."""

    type: str
    id: str = ""
    name: str = ""

    @classmethod
    def for_api_client(cls, client: ApiClient) -> Actor:
        return cls(AuditEvent.ActorType.API_CLIENT, str(client.pk), client.username)

    @classmethod
    def for_user(cls, user) -> Actor:
        return cls(AuditEvent.ActorType.ADMIN_USER, str(user.pk), user.get_username())

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(AuditEvent.ActorType.SYSTEM, "", name)


def audit_event_record(
    *, org: Organization | int, actor: Actor, action: str, object_type: str, object_id: Any = "", data=None
) -> AuditEvent:
    """Append one audit event, tagged with the current request id. Call inside the write's transaction."""
    return AuditEvent.objects.create(
        org_id=org if isinstance(org, int) else org.pk,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_name=actor.name,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        request_id=current_request_id(),
        data=data or {},
    )
