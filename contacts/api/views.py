from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from contacts.api.filters import ActivityFilter, ContactFilter, OptoutFilter
from contacts.api.serializers import (
    ACTIVITY_TYPES,
    ActivityEventSerializer,
    ContactSerializer,
    ContactTagsSerializer,
    PreferencesSerializer,
    PreferencesUpdateSerializer,
)
from contacts.constants import CHANNELS
from contacts.models import ActivityEvent, Contact
from contacts.services import (
    activity_record,
    contact_add_tags,
    contact_create,
    contact_delete,
    contact_remove_tag,
    contact_set_preferences,
    contact_update,
)
from contacts_project.api.viewsets import AccountScopedViewSet, RetrieveMixin

ACTIVITY_PARAMETERS = [
    OpenApiParameter("type", str, enum=ACTIVITY_TYPES, description="Exact event type."),
    OpenApiParameter("channel", str, enum=CHANNELS, description="Exact channel."),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="RFC 3339; events that occurred at or after."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="RFC 3339; events that occurred strictly before."),
]


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
class ContactViewSet(mixins.ListModelMixin, RetrieveMixin, AccountScopedViewSet):
    queryset = Contact.objects.for_output()
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
        # A DELETE defaults to 204 in the schema; this one answers the contact.
        responses={200: ContactSerializer},
    )
    @action(detail=True, methods=["delete"], url_path=r"tags/(?P<tag>.+)")
    def remove_tag(self, request, pk, tag):
        contact = contact_remove_tag(account=self.account, contact_id=pk, tag=tag)
        return Response(self.get_serializer(contact).data)

    @extend_schema(
        summary="Update channel preferences",
        description=(
            "A partial map of channel to status (`opted_in`, `opted_out`, `unset`); channels not sent are "
            "unchanged. Returns all six. Each channel that changes records one `preference.updated` event with "
            "the old and new status and the API key that made the change."
        ),
        request=PreferencesUpdateSerializer,
        responses=PreferencesSerializer,
    )
    @action(detail=True, methods=["put"], url_path="preferences")
    def preferences(self, request, pk):
        serializer = PreferencesUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact = contact_set_preferences(
            account=self.account, contact_id=pk, statuses=serializer.validated_data, api_key_id=request.auth.pk
        )
        return Response(contact.preference_map)

    @extend_schema(
        summary="List opted-out contacts",
        description="Contacts opted out of at least one channel (or of `channel`), newest first.",
        responses=ContactSerializer(many=True),
    )
    @action(detail=False, methods=["get"], url_path="optouts", filterset_class=OptoutFilter)
    def optouts(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ContactSerializer(page, many=True).data)

    @extend_schema(
        methods=["get"],
        summary="A contact's activity timeline",
        description="Newest `occurred_at` first.",
        parameters=ACTIVITY_PARAMETERS,
        # Only the timeline's own filters apply, not the viewset's contact filters.
        filters=False,
        responses=ActivityEventSerializer(many=True),
    )
    @extend_schema(
        methods=["post"],
        summary="Record an activity event",
        description=(
            "201 with the new event. A repeat of the same (`message_id`, `type`) for this contact records "
            "nothing and returns the stored event with 200, so receipt retries never double count."
        ),
        request=ActivityEventSerializer,
        responses={201: ActivityEventSerializer, 200: ActivityEventSerializer},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        url_path="activity",
        keyset_ordering=("-occurred_at", "-id"),
        filterset_class=ActivityFilter,
    )
    def activity(self, request, pk):
        contact = self.get_object()
        if request.method == "POST":
            serializer = ActivityEventSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            event, created = activity_record(
                account=self.account, contact_id=contact.pk, data=serializer.validated_data
            )
            return Response(
                ActivityEventSerializer(event).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
            )
        # The timeline's filterset filters events, not contacts: applied here, not by filter_queryset().
        events = self.filterset_class(
            request.query_params, ActivityEvent.objects.for_account(self.account).filter(contact=contact)
        )
        if not events.is_valid():
            raise translate_validation(events.errors)
        page = self.paginate_queryset(events.qs)
        return self.get_paginated_response(ActivityEventSerializer(page, many=True).data)
