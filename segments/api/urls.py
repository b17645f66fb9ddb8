from rest_framework.routers import SimpleRouter

from segments.api.views import SegmentViewSet

router = SimpleRouter(trailing_slash=False)
router.register("contacts/segments", SegmentViewSet, basename="segment")

urlpatterns = router.urls
