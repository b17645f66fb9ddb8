"""Content negotiation with a short cut for what nearly every API client sends."""

from rest_framework.negotiation import DefaultContentNegotiation

# Accept headers whose answer is the JSON renderer's own media type, whatever
# the renderers' order: no preference, any type, or JSON itself.
PLAIN_ACCEPTS = frozenset({"", "*/*", "application/json"})


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, which parses and ranks the Accept header on every request.

    When the view renders JSON only and the client's Accept is one of
    ``PLAIN_ACCEPTS`` with no ``?format=`` or suffix, the answer is known
    without parsing: that was a tenth of a contact read's CPU. Anything else
    (another type, q-values, the schema views' several renderers, a 406) goes
    through DRF unchanged.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        if (
            len(renderers) == 1
            and renderers[0].media_type == "application/json"
            and format_suffix is None
            and request.META.get("HTTP_ACCEPT", "") in PLAIN_ACCEPTS
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
