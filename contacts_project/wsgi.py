import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contacts_project.settings")

application = get_wsgi_application()

# Load every view now, then move the ~100,000 objects of Django, DRF and the
# app out of the cyclic collector's sight: a full collection walked them all
# (~25 ms) in the middle of whichever request triggered it, the p99 tail of
# the benchmark. Reference counting still frees everything at once; only
# what a request leaves in a cycle waits for the (now small) collections.
get_resolver().url_patterns  # noqa: B018
gc.freeze()
