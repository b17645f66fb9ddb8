"""Vocabulary shared by contacts, preferences and segment rules."""

CHANNELS = ("sms", "whatsapp", "email", "rcs", "viber", "voice")
PREFERENCE_STATUSES = ("opted_in", "opted_out", "unset")
UNSET = "unset"

LIFECYCLE_STAGE_PATTERN = r"^[a-z0-9_-]{1,32}$"
DEFAULT_LIFECYCLE_STAGE = "lead"

NAME_MAX_LENGTH = 100
EMAIL_MAX_LENGTH = 254
TAG_MAX_LENGTH = 64
TAGS_MAX_COUNT = 100
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX_LENGTH = 40
METADATA_MAX_BYTES = 8 * 1024

# A contact as the API answers it, and as export_contacts writes it (which import_contacts reads back).
CONTACT_REPRESENTATION = (
    "id",
    "phone",
    "email",
    "first_name",
    "last_name",
    "country",
    "lifecycle_stage",
    "tags",
    "metadata",
    "preferences",
    "created_at",
    "updated_at",
)
