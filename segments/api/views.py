from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from contacts.api.serializers import ContactSerializer
from contacts_project.api.viewsets import AccountScopedViewSet, RetrieveMixin, representer
from segments.api.serializers import (
    SegmentDetailSerializer,
    SegmentPreviewResultSerializer,
    SegmentPreviewSerializer,
    SegmentSerializer,
)
from segments.models import Segment
from segments.services import (
    segment_contacts,
    segment_count,
    segment_create,
    segment_preview_count,
    segment_update,
)

PREVIEW_SAMPLE_SIZE = 10


@extend_schema_view(
    list=extend_schema(summary="List segments", description="Newest first; `contact_count` is omitted here."),
    create=extend_schema(summary="Create a segment", responses={201: SegmentDetailSerializer}),
    retrieve=extend_schema(summary="Get a segment with its exact current contact_count"),
    update=extend_schema(summary="Update a segment", description="Partial: omitted fields are unchanged."),
    partial_update=extend_schema(summary="Update a segment (same as PUT)"),
    destroy=extend_schema(summary="Delete a segment", description="Contacts are not affected."),
)
class SegmentViewSet(mixins.ListModelMixin, RetrieveMixin, AccountScopedViewSet):
    queryset = Segment.objects.all()
    serializer_class = SegmentDetailSerializer
    lookup_value_regex = "seg_[^/]+"

    def get_serializer_class(self):
        return SegmentSerializer if self.action == "list" else SegmentDetailSerializer

    def detail_data(self, segment) -> dict:
        segment.contact_count = segment_count(account=self.account, rules=segment.rules)
        return representer(SegmentDetailSerializer).to_representation(segment)

    def _detail(self, segment, status_code=status.HTTP_200_OK):
        return Response(self.detail_data(segment), status=status_code)

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        segment = segment_create(account=self.account, **serializer.validated_data)
        return self._detail(segment, status.HTTP_201_CREATED)

    def update(self, request, pk):
        segment = self.get_object()
        serializer = self.get_serializer(segment, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        return self._detail(segment_update(segment=segment, data=serializer.validated_data))

    def partial_update(self, request, pk):
        return self.update(request, pk)

    def destroy(self, request, pk):
        self.get_object().delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="List a segment's members",
        description="The contacts matching the rules now, newest first.",
        responses=ContactSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def members(self, request, pk):
        contacts = segment_contacts(account=self.account, rules=self.get_object().rules)
        page = self.paginate_queryset(contacts)
        return self.get_paginated_response(ContactSerializer(page, many=True).data)

    @extend_schema(
        summary="Preview rules",
        description=(
            f"The count and up to {PREVIEW_SAMPLE_SIZE} matching contacts (newest first); nothing is saved. "
            "The count is exact when it takes little work; for broad rules over many contacts counting stops "
            "at a cap (1,000 by default) and `contact_count_exact` is false: at least that many match. "
            "Save the segment and get it for the exact count."
        ),
        request=SegmentPreviewSerializer,
        responses=SegmentPreviewResultSerializer,
    )
    @action(detail=False, methods=["post"])
    def preview(self, request):
        serializer = SegmentPreviewSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        contacts = segment_contacts(account=self.account, rules=serializer.validated_data["rules"])
        counted = segment_preview_count(contacts)
        sample = contacts.order_by("-created_at", "-id")[:PREVIEW_SAMPLE_SIZE]
        return Response(
            {
                "contact_count": counted.count,
                "contact_count_exact": counted.exact,
                "sample": ContactSerializer(sample, many=True).data,
            }
        )
