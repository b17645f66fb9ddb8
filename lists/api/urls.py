from rest_framework.routers import SimpleRouter

from lists.api.views import ContactListViewSet

router = SimpleRouter(trailing_slash=False)
router.register("contacts/lists", ContactListViewSet, basename="contact-list")

urlpatterns = router.urls
