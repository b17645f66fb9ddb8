from rest_framework.routers import SimpleRouter

from contacts.api.views import ContactViewSet

router = SimpleRouter(trailing_slash=False)
router.register("contacts", ContactViewSet, basename="contact")

urlpatterns = router.urls
