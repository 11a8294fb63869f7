"""Forms of the marketer admin's bulk screens (issue a promotion, bulk earn) and how they read a
customer list: pasted identifiers or an uploaded CSV file.

A customer list is read the same way when it is previewed and when the confirmed job is created (from
the stored copy of the input), so the two always agree. Each identifier keeps the line of the text or
file it is on (counting blank lines and a header row), which the job's error report shows.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Collection
from typing import IO, NamedTuple

from django import forms
from django.conf import settings
from django.utils import timezone

from promotions.models import Promotion, PromotionType
from promotions_site.uploads import upload_too_large_message
from wallets.identifiers import SOURCES, email_normalize, mobile_normalize
from wallets.models import Customer
from wallets.services import BULK_EARNED_FROM_TYPES, MAX_EARN_COUNT, MAX_EARN_ENTRIES

# How a list names its customers: the value stored in BulkJob.identifier_type, and its label.
IDENTIFIER_TYPES = [
    ("id", "customerId"),
    ("mobile", "mobile"),
    ("email", "email"),
    ("externalId", "externalId"),
]
# A CSV header cell (lower case, without spaces, "_" and "-") naming an identifier column.
HEADER_NAMES = {
    "customerid": "id",
    "id": "id",
    "mobile": "mobile",
    "email": "email",
    "externalid": "externalId",
}
LABELS = dict(IDENTIFIER_TYPES)
MAX_LINES = 1_000_000
# Line breaks as a textarea or a text file has them: CRLF, LF or CR.
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")


class ListedValue(NamedTuple):
    """An identifier of a customer list and the line it is on (from 1, as an editor numbers them)."""

    line: int
    value: str


def customer_values_from_text(text: str) -> list[ListedValue]:
    """Pasted identifiers: one per line, commas also separate (values of one line share its
    number); blank lines and blank values are skipped but counted."""
    values = [
        ListedValue(number, value.strip())
        for number, text_line in enumerate(_LINE_BREAKS.split(text), start=1)
        for value in text_line.split(",")
        if value.strip()
    ]
    if len(values) > MAX_LINES:
        raise forms.ValidationError(f"At most {MAX_LINES:,} customers per job.")
    return values


def _header_key(cell: str) -> str:
    return re.sub(r"[\s_-]", "", cell).lower()


def customer_values_from_csv(file: IO[bytes], identifier_type: str) -> tuple[list[ListedValue], str]:
    """The identifiers of a UTF-8 CSV file and the identifier type they are.

    A first row naming an identifier column (customerId, mobile, email, externalId; any case) is a
    header: the column of the chosen `identifier_type` is read; if the header has no such column but
    exactly one identifier column, that column is read and its type returned. Without a header the file
    must have a single column. Blank rows and blank cells are skipped. A value's line is the file's
    line its row starts on (a header and blank rows count).
    """
    text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
    try:
        return _read_csv(csv.reader(text), identifier_type)
    except UnicodeDecodeError as error:
        raise forms.ValidationError("The file is not UTF-8 text; save it as “CSV UTF-8”.") from error
    except csv.Error as error:
        raise forms.ValidationError(f"The file is not a readable CSV file: {error}") from error
    finally:
        text.detach()  # leave the uploaded file open: the view stores it as the job's input


def _read_csv(reader, identifier_type: str) -> tuple[list[ListedValue], str]:
    values: list[ListedValue] = []
    column, has_header = None, False
    starts = 1  # the line the next row starts on: a quoted value may span lines
    for row in reader:
        number, starts = starts, reader.line_num + 1
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if column is None:
            types: dict[str, int] = {}
            for index, cell in enumerate(cells):
                types.setdefault(HEADER_NAMES.get(_header_key(cell), ""), index)
            types.pop("", None)
            column, has_header = 0, bool(types)
            if has_header:
                column, identifier_type = _header_column(types, identifier_type)
                continue
        if not has_header and any(cells[1:]):
            raise forms.ValidationError(
                f"Row {number} has several columns. A file without a header row must have one column; "
                "or add a header row naming the identifier column (customerId, mobile, email or externalId)."
            )
        value = cells[column] if column < len(cells) else ""
        if value:
            values.append(ListedValue(number, value))
            if len(values) > MAX_LINES:
                raise forms.ValidationError(f"At most {MAX_LINES:,} customers per job.")
    return values, identifier_type


def _header_column(types: dict[str, int], identifier_type: str) -> tuple[int, str]:
    if identifier_type in types:
        return types[identifier_type], identifier_type
    if len(types) == 1:
        [(found, column)] = types.items()
        return column, found
    names = ", ".join(LABELS[t] for t in types)
    raise forms.ValidationError(
        f"The header has several identifier columns ({names}) but none for {LABELS[identifier_type]}: "
        "choose which one in “Customers are identified by”."
    )


class CustomerAdminForm(forms.ModelForm):
    """A customer as the customers API takes one: identifiers in their stored spelling (mobile digits
    without +, email lower-case), a documented source, and at least one identifier to be found by."""

    source = forms.ChoiceField(choices=[(s, s) for s in SOURCES], initial="INSTORE")

    class Meta:
        model = Customer
        fields = ["org", "mobile", "email", "external_id", "first_name", "last_name", "source"]
        # In a marketer's words; the help names the customers API's field.
        labels = {"external_id": "External id", "source": "Source"}
        help_texts = {
            "mobile": "Country code first, digits only (a leading + is allowed). API: mobile.",
            "email": "Stored in lower case. API: email.",
            "external_id": "The customer's id in your own systems (a loyalty card number, ...). API: externalId.",
            "first_name": "API: firstName.",
            "last_name": "API: lastName.",
            "source": "Where the customer signed up. API: source.",
        }

    def clean_mobile(self):
        value = self.cleaned_data["mobile"]
        if not value:
            return None
        normalized = mobile_normalize(value)
        if normalized is None:
            raise forms.ValidationError("Enter 8 to 15 digits, country code first; a leading + is allowed.")
        return self._untaken("mobile", "mobile", normalized)

    def clean_email(self):
        value = self.cleaned_data["email"]
        return self._untaken("email", "email", email_normalize(value)) if value else None

    def clean_external_id(self):
        value = (self.cleaned_data["external_id"] or "").strip()
        return self._untaken("externalId", "external_id", value) if value else None

    def _untaken(self, name: str, field: str, value: str) -> str:
        """The value, unless another customer of the org has it: said the way customer_create says it
        (the model's conditional constraints would only say "Constraint ... is violated")."""
        org_id = self.instance.org_id or getattr(self.cleaned_data.get("org"), "pk", None)
        others = Customer.objects.filter(org_id=org_id, **{field: value}).exclude(pk=self.instance.pk)
        if org_id is not None and others.exists():
            raise forms.ValidationError(f"{name} {value} is already used by another customer of this org.")
        return value

    def clean(self):
        cleaned = super().clean()
        if not any(cleaned.get(name) for name in ("mobile", "email", "external_id")) and not any(
            name in self.errors for name in ("mobile", "email", "external_id")
        ):
            # customer_create's rule: a customer nobody can look up is refused.
            raise forms.ValidationError("At least one of mobile, email or externalId is required.")
        return cleaned


class CustomerListForm(forms.Form):
    """Who: customers by one kind of identifier, pasted or in a CSV file (not both)."""

    identifier_type = forms.ChoiceField(
        label="Customers are identified by",
        choices=IDENTIFIER_TYPES,
        initial="id",
        help_text="Mobile numbers are matched with or without the leading +, emails without case.",
    )
    identifiers = forms.CharField(
        label="Customer identifiers",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 60, "placeholder": "564332013\n564332014\n..."}),
        help_text="One per line (commas also separate). For long lists, upload a file instead.",
    )
    csv_file = forms.FileField(
        label="…or a CSV file",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,text/csv,text/plain"}),
        help_text="UTF-8. One identifier per row; or a header row naming the column to read "
        "(customerId, mobile, email or externalId), which then may have other columns too. "
        "A header naming a single identifier column also sets the identifier type.",
    )

    def __init__(self, *args, oversized: Collection[str] = (), **kwargs):
        """`oversized`: the file fields whose upload was dropped for passing the byte cap
        (`promotions_site.uploads.uploads_over_cap`)."""
        super().__init__(*args, **kwargs)
        self.oversized = oversized

    def clean_csv_file(self):
        upload = self.cleaned_data.get("csv_file")
        # Checked on the size Django recorded, before a byte of the file is read here.
        if "csv_file" in self.oversized or (upload and upload.size > settings.ADMIN_UPLOAD_MAX_BYTES):
            raise forms.ValidationError(
                f"{upload_too_large_message()} Split the list into several files, one job each."
            )
        return upload

    def clean(self):
        cleaned = super().clean()
        if "csv_file" in self.errors:
            return cleaned
        # Trailing blanks go (as Django's strip would); leading blank lines stay, as they count.
        text, upload = cleaned.get("identifiers", "").rstrip(), cleaned.get("csv_file")
        cleaned["identifiers"] = text
        identifier_type = cleaned.get("identifier_type")
        if identifier_type is None:
            return cleaned
        if text.strip() and upload:
            raise forms.ValidationError("Paste identifiers or upload a file, not both.")
        if upload:
            listed, identifier_type = customer_values_from_csv(upload, identifier_type)
            upload.seek(0)
            source = "csv"
        else:
            listed, source = customer_values_from_text(text), "paste"
        if not listed:
            raise forms.ValidationError("No customer identifiers: paste some or upload a CSV file.")
        cleaned.update(values=[v.value for v in listed], identifier_type=identifier_type, source=source)
        return cleaned


class IssueForm(CustomerListForm):
    context_id = forms.CharField(
        label="contextId",
        max_length=255,
        widget=forms.TextInput(attrs={"class": "vTextField"}),
        help_text="Names this issue; each instance keeps it as its earnedFromId. Issuing again with the "
        "same contextId gives no customer a second instance (those who have it count as done): use a new "
        "contextId for a new wave.",
    )

    field_order = ["identifier_type", "identifiers", "csv_file", "context_id"]

    @staticmethod
    def default_context_id(promotion: Promotion) -> str:
        return f"admin-{timezone.localdate():%Y%m%d}-{promotion.pk}"


class EarnForm(CustomerListForm):
    earned_from_type = forms.ChoiceField(
        label="earnedFromType",
        choices=[(t, t) for t in BULK_EARNED_FROM_TYPES],
        initial="ACTIVITY",
        help_text="What the customers earned these for.",
    )
    earned_from_id = forms.CharField(
        label="earnedFromId",
        max_length=255,
        widget=forms.TextInput(attrs={"class": "vTextField"}),
        help_text="Names this earn (e.g. the campaign or the activity). Running it again with the same "
        "earnedFromId creates only the instances still missing, never more.",
    )

    field_order = ["identifier_type", "identifiers", "csv_file", "earned_from_type", "earned_from_id"]


class EarnEntryForm(forms.Form):
    promotion = forms.ModelChoiceField(queryset=Promotion.objects.none(), required=False, label="Promotion")
    earn_count = forms.IntegerField(
        label="earnCount", min_value=1, max_value=MAX_EARN_COUNT, initial=1, required=False
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("promotion") and not cleaned.get("earn_count"):
            self.add_error("earn_count", f"How many instances (1 to {MAX_EARN_COUNT}).")
        return cleaned


class BaseEarnEntryFormSet(forms.BaseFormSet):
    """The promotions to earn: rows without a promotion are ignored; each promotion once."""

    def __init__(self, *args, promotions=None, **kwargs):
        super().__init__(*args, **kwargs)
        queryset = (promotions if promotions is not None else Promotion.objects.none()).filter(
            type__in=PromotionType.EARNABLE_TYPES, end_date__gt=timezone.now()
        )
        for form in self.forms:
            form.fields["promotion"].queryset = queryset.order_by("name")
            form.fields["promotion"].label_from_instance = lambda p: f"{p.name} ({p.type}, {p.pk})"

    def clean(self):
        if any(self.errors):
            return
        chosen = [form.cleaned_data["promotion"] for form in self.forms if form.cleaned_data.get("promotion")]
        if not chosen:
            raise forms.ValidationError("Choose at least one promotion to earn.")
        if len({p.pk for p in chosen}) != len(chosen):
            raise forms.ValidationError("Each promotion can be chosen once.")
        if len({p.org_id for p in chosen}) > 1:
            raise forms.ValidationError("Choose promotions of one organization.")

    def entries(self) -> list[tuple[Promotion, int]]:
        return [
            (form.cleaned_data["promotion"], form.cleaned_data["earn_count"])
            for form in self.forms
            if form.cleaned_data.get("promotion")
        ]


EarnEntryFormSet = forms.formset_factory(
    EarnEntryForm, formset=BaseEarnEntryFormSet, extra=5, max_num=MAX_EARN_ENTRIES, validate_max=True
)


def read_stored_values(file: IO[bytes], source: str, identifier_type: str) -> list[ListedValue]:
    """The customer list of a stored input (the confirmed preview's copy), read as it was previewed."""
    if source == "csv":
        values, _ = customer_values_from_csv(file, identifier_type)
        return values
    return customer_values_from_text(codecs.getreader("utf-8")(file).read())
