"""Every write records who did it, on which org, under which request id (X-Request-ID)."""

from __future__ import annotations

import pytest
from rest_framework.permissions import SAFE_METHODS

from promotions.models import AuditEvent
from tests.api_routes import CASES, Ids, case_id, org_seed, send

API_WRITES = sorted(key for key, case in CASES.items() if key[1] not in SAFE_METHODS and not case.public)


def test_every_api_write_names_its_audit_action():
    assert [key for key in API_WRITES if CASES[key].audit is None] == []


@pytest.mark.parametrize("key", API_WRITES, ids=case_id)
def test_api_write_records_actor_org_and_request_id(key, org):
    # given
    mine = org_seed(org)
    case, request_id = CASES[key], f"audit-{key[0]}-{key[1]}"
    # when
    response = send(mine.api, key[1], case.call(Ids(mine)), HTTP_X_REQUEST_ID=request_id)
    # then
    assert response.status_code == case.status, response.content
    assert response["X-Request-ID"] == request_id
    events = AuditEvent.objects.filter(request_id=request_id)
    assert [(e.org_id, e.actor_type, e.actor_id, e.actor_name, e.action) for e in events] == [
        (org.pk, "API_CLIENT", str(mine.client.pk), mine.client.username, case.audit)
    ]
