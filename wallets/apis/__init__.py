"""The wallet endpoints, one module per concern: `issue` (issueBulk), `earn` (earn, earn/bulk), `revoke`
(revokeEarn), `wallet` (a customer's wallet), `customers` (create, look up) and `loyalty` (the v2 issue).
Each view validates, calls one service or selector and renders; the OpenAPI text lives in
`wallets/schema.py`, the bodies in `wallets/serializers.py`."""
