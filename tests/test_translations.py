"""Every label people see is translated into Japanese, and the compiled catalogue is current."""

import polib
import pytest
from django.apps import apps
from django.utils import translation

from .helpers.project import BASE_DIR

PO = BASE_DIR / "locale" / "ja" / "LC_MESSAGES" / "django.po"
OUR_APPS = [
    "contactcenter",
    "consent",
    "privacy",
    "recordings",
    "audit",
    "training",
    "portal",
    "incidents",
]


def is_japanese(text):
    return any(ord(character) > 0x3000 for character in str(text))


def test_every_message_has_a_japanese_translation():
    catalogue = polib.pofile(str(PO))
    assert catalogue.untranslated_entries() == []
    assert catalogue.fuzzy_entries() == []


def test_the_compiled_catalogue_matches_the_source():
    source = {entry.msgid: entry.msgstr for entry in polib.pofile(str(PO)) if entry.msgid}
    compiled = {
        entry.msgid: entry.msgstr
        for entry in polib.mofile(str(PO.with_suffix(".mo")))
        if entry.msgid
    }
    assert compiled == source


@pytest.mark.parametrize("app_label", OUR_APPS)
def test_model_and_field_labels_are_japanese(app_label):
    with translation.override("ja"):
        assert is_japanese(apps.get_app_config(app_label).verbose_name)
        for model in apps.get_app_config(app_label).get_models():
            assert is_japanese(model._meta.verbose_name), model
            assert is_japanese(model._meta.verbose_name_plural), model
            for field in model._meta.get_fields():
                if field.concrete and not field.auto_created:
                    assert is_japanese(field.verbose_name), f"{model.__name__}.{field.name}"
                    for _value, label in field.flatchoices:
                        assert is_japanese(label), f"{model.__name__}.{field.name}: {label}"
