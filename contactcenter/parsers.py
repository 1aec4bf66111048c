"""The REST API's JSON parser, with a refusal instead of a crash for absurd nesting."""

from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, answering 400 to JSON nested too deep to parse.

    Python's parser recurses once per level and raises RecursionError (not ValueError, which
    DRF turns into a 400) at about a thousand: ``[[[[…]]]]`` sent by anyone logged in
    would be a 500 that ties up a worker's stack.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(_("The JSON is nested too deeply to be read.")) from None
