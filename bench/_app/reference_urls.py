"""`POST /reference/write`: the minimal write the HTTP benches compare the app's endpoints with.

The body is `{"counterId": n, "key": "<unique>"}`. In one transaction: one conditional UPDATE of a hot
counter row (a RedemptionCounter every request updates, as every redemption updates its Promotion
counter) and one INSERT ... ON CONFLICT DO NOTHING of a row keyed by the request's key into a scratch
table (created by the bench: bench/_common.py `reference_counter`); the answer is a tiny JSON. 409
when the counter is full (the benches set its limit out of reach and count it as an error). Nothing
of the app's stack: no middleware, no authentication, no audit event, no error envelope.
"""

from django.db import connection, transaction
from django.urls import path
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from bench._common import REFERENCE_PATH, REFERENCE_TABLE
from redemptions.models import RedemptionCounter

TAKE = f'UPDATE {RedemptionCounter._meta.db_table} SET used = used + 1 WHERE id = %s AND used < "limit"'
WRITE = f"INSERT INTO {REFERENCE_TABLE} (key, written_at) VALUES (%s, now()) ON CONFLICT DO NOTHING"


class ReferenceWriteApi(APIView):
    authentication_classes = []
    permission_classes = []

    class InputSerializer(serializers.Serializer):
        counterId = serializers.IntegerField()
        key = serializers.CharField(max_length=100)

    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        counter_id, key = payload.validated_data["counterId"], payload.validated_data["key"]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(TAKE, [counter_id])
            taken = cursor.rowcount
            if taken:
                cursor.execute(WRITE, [key])
        if not taken:
            return Response({"taken": 0}, status=409)
        return Response({"taken": 1})


urlpatterns = [path(REFERENCE_PATH.lstrip("/"), ReferenceWriteApi.as_view())]
