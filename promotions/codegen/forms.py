"""The admin's promo-code forms: ask for N generated codes, or upload a CSV of codes."""

from __future__ import annotations

import secrets

from django import forms

from promotions.codegen.spec import COUNT_MAX
from promotions_site.uploads import upload_too_large_message


class GenerateCodesForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=COUNT_MAX, help_text="1 to 10,000,000 codes.")
    length = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=1000,
        help_text="5 to 40 characters in all (prefix and suffix included).",
    )
    charset = forms.ChoiceField(
        choices=[
            ("ALPHANUMERIC", "Letters and digits (no 0, O, 1, I, L)"),
            ("NUMERIC", "Digits"),
            ("CUSTOM", "My own alphabet"),
        ],
        initial="ALPHANUMERIC",
    )
    alphabet = forms.CharField(
        required=False, max_length=64, help_text="With “My own alphabet”: its symbols."
    )
    prefix = forms.CharField(required=False, max_length=40)
    suffix = forms.CharField(required=False, max_length=40)
    pattern = forms.CharField(
        required=False,
        max_length=40,
        help_text="Instead of length, prefix and suffix: # a digit, ? a symbol, anything else as it is "
        "(SUMMER-####-??????).",
    )
    # Drawn when the form is shown: a double submit (or a reload of the POST) finds the same batch.
    request_id = forms.CharField(widget=forms.HiddenInput, max_length=100)

    @staticmethod
    def new_request_id() -> str:
        return f"admin-{secrets.token_hex(8)}"


class UploadCodesForm(forms.Form):
    csv_file = forms.FileField(
        label="CSV file",
        help_text="One code per row in the first column; an optional header row “code”. UTF-8.",
    )
    request_id = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args, oversized: frozenset[str] = frozenset(), **kwargs):
        super().__init__(*args, **kwargs)
        self.oversized = oversized

    def clean_csv_file(self):
        if "csv_file" in self.oversized:
            raise forms.ValidationError(upload_too_large_message())
        return self.cleaned_data["csv_file"]
