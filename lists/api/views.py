from django.db.models import F
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from contacts.api.serializers import ContactSerializer
from contacts.models import Contact
from contacts_project.api.viewsets import AccountScopedViewSet, RetrieveMixin
from lists.api.serializers import AddMembersResultSerializer, AddMembersSerializer, ContactListSerializer
from lists.models import ContactList
from lists.services import list_add_members, list_create, list_delete, list_remove_member, list_update


@extend_schema_view(
    list=extend_schema(summary="List contact lists", description="Newest first."),
    create=extend_schema(summary="Create a list", responses={201: ContactListSerializer}),
    retrieve=extend_schema(summary="Get a list"),
    update=extend_schema(summary="Update a list", description="Partial: omitted fields are unchanged."),
    partial_update=extend_schema(summary="Update a list (same as PUT)"),
    destroy=extend_schema(summary="Delete a list", description="Its members stay as contacts."),
)
class ContactListViewSet(mixins.ListModelMixin, RetrieveMixin, AccountScopedViewSet):
    queryset = ContactList.objects.all()
    serializer_class = ContactListSerializer
    lookup_value_regex = "lst_[^/]+"

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact_list = list_create(account=self.account, **serializer.validated_data)
        return Response(self.get_serializer(contact_list).data, status=status.HTTP_201_CREATED)

    def update(self, request, pk):
        contact_list = self.get_object()
        serializer = self.get_serializer(contact_list, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        contact_list = list_update(contact_list=contact_list, data=serializer.validated_data)
        return Response(self.get_serializer(contact_list).data)

    def partial_update(self, request, pk):
        return self.update(request, pk)

    def destroy(self, request, pk):
        list_delete(contact_list=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["get"],
        summary="List a list's members",
        description="Member contacts, most recently added first.",
        responses=ContactSerializer(many=True),
    )
    @extend_schema(
        methods=["post"],
        summary="Add members",
        description="Adds the contacts in one statement, ignoring those already members. "
        "If any id is unknown (or another account's), nothing is added and the 400 names the unknown ids.",
        request=AddMembersSerializer,
        responses=AddMembersResultSerializer,
    )
    @action(detail=True, methods=["get", "post"], url_path="members", keyset_ordering=("-added_at", "-id"))
    def members(self, request, pk):
        contact_list = self.get_object()
        if request.method == "POST":
            serializer = AddMembersSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            result = list_add_members(
                account=self.account, contact_list=contact_list, contact_ids=serializer.validated_data["contact_ids"]
            )
            return Response(result)
        contacts = Contact.objects.for_output().for_account(self.account).filter(memberships__contact_list=contact_list)
        page = self.paginate_queryset(contacts.annotate(added_at=F("memberships__added_at")))
        return self.get_paginated_response(ContactSerializer(page, many=True).data)

    @extend_schema(summary="Remove a member", description="Idempotent: 204 whether or not it was a member.")
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<contact_id>[^/]+)")
    def remove_member(self, request, pk, contact_id):
        list_remove_member(contact_list=self.get_object(), contact_id=contact_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
