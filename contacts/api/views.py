from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from contacts.api.filters import ContactFilter
from contacts.api.serializers import ContactSerializer, ContactTagsSerializer
from contacts.models import Contact
from contacts.services import (
    contact_add_tags,
    contact_create,
    contact_delete,
    contact_remove_tag,
    contact_update,
)
from contacts_project.api.viewsets import AccountScopedViewSet


@extend_schema_view(
    list=extend_schema(summary="List and search contacts", description="Newest first (`created_at`, then `id`)."),
    create=extend_schema(summary="Create a contact", responses={201: ContactSerializer}),
    retrieve=extend_schema(summary="Get a contact"),
    update=extend_schema(
        summary="Update a contact",
        description=(
            "Partial update (PUT and PATCH mean the same): omitted fields are unchanged; `null` clears phone, "
            "email, country and names; `metadata` is merged shallowly and a key sent as `null` is removed; "
            "`tags` replaces the tag set. Read-only fields are ignored."
        ),
    ),
    partial_update=extend_schema(summary="Update a contact (same as PUT)"),
    destroy=extend_schema(summary="Delete a contact and everything attached to it"),
)
class ContactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    lookup_value_regex = "con_[^/]+"

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact = contact_create(account=self.account, data=serializer.validated_data)
        return Response(self.get_serializer(contact).data, status=status.HTTP_201_CREATED)

    def update(self, request, pk):
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        contact = contact_update(account=self.account, contact_id=pk, data=serializer.validated_data)
        return Response(self.get_serializer(contact).data)

    def partial_update(self, request, pk):
        return self.update(request, pk)

    def destroy(self, request, pk):
        contact_delete(account=self.account, contact_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Add tags", request=ContactTagsSerializer, responses=ContactSerializer)
    @action(detail=True, methods=["post"], url_path="tags")
    def add_tags(self, request, pk):
        serializer = ContactTagsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact = contact_add_tags(account=self.account, contact_id=pk, tags=serializer.validated_data["tags"])
        return Response(self.get_serializer(contact).data)

    @extend_schema(
        summary="Remove a tag",
        description="The tag is URL-encoded in the path. Removing an absent tag changes nothing.",
        request=None,
        responses=ContactSerializer,
    )
    @action(detail=True, methods=["delete"], url_path=r"tags/(?P<tag>.+)")
    def remove_tag(self, request, pk, tag):
        contact = contact_remove_tag(account=self.account, contact_id=pk, tag=tag)
        return Response(self.get_serializer(contact).data)
