"""The byte cap on uploaded files (`ADMIN_UPLOAD_MAX_BYTES`): the admin's customer lists.

`CappedUploadHandler` comes first in `FILE_UPLOAD_HANDLERS`, so it sees every chunk of an upload
before Django stores it (in memory or a temporary file). The first chunk past the cap drops the file:
nothing more of it is stored, the rest of the request is read and discarded, and the form is told
(`uploads_over_cap`) so it answers a clear error instead of "no file". A cap checked on the parsed
form would come after the whole file had been written to disk and read.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.template.defaultfilters import filesizeformat

_OVER_CAP = "_uploads_over_cap"


def upload_too_large_message() -> str:
    return f"The file is larger than {filesizeformat(settings.ADMIN_UPLOAD_MAX_BYTES)}, the most an upload may be."


def uploads_over_cap(request) -> frozenset[str]:
    """The names of the file fields of `request` whose upload was dropped for passing the cap."""
    return frozenset(getattr(request, _OVER_CAP, ()))


class CappedUploadHandler(FileUploadHandler):
    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > settings.ADMIN_UPLOAD_MAX_BYTES:
            setattr(self.request, _OVER_CAP, {*uploads_over_cap(self.request), self.field_name})
            raise SkipFile
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler keeps the file
