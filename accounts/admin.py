import math

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from accounts.models import Account, ApiKey
from accounts.services import api_keys_revoke
from contacts_project.admin import OperatorAdmin, summarized_deletion
from contacts_project.api.ratelimit import admin_login_bucket, rate_limit_hit, rate_limit_peek


class AdminLoginForm(AdminAuthenticationForm):
    """The admin login, refused for the rest of the window after too many failures from one IP for one username.

    ``ADMIN_LOGIN_MAX_FAILURES`` failed attempts (wrong password, not staff,
    inactive) within ``ADMIN_LOGIN_WINDOW_SECONDS`` lock that IP and username
    pair out; the refusal is checked before the password is, so a locked-out
    guesser learns nothing and costs no password hash. Counted in the same
    store as the API's rate limits; if that store is down, logins are not limited.
    """

    def clean(self):
        limit = settings.ADMIN_LOGIN_MAX_FAILURES
        if limit <= 0:
            return super().clean()
        bucket = admin_login_bucket(self.request, self.cleaned_data.get("username"))
        window = settings.ADMIN_LOGIN_WINDOW_SECONDS
        usage = rate_limit_peek(bucket, limit=limit, window=window)
        if usage is not None and usage.remaining == 0:
            minutes = math.ceil(usage.reset / 60)
            raise ValidationError(
                "Too many failed login attempts. Try again in %(minutes)d minute(s).",
                code="too_many_attempts",
                params={"minutes": minutes},
            )
        try:
            return super().clean()
        except ValidationError:
            rate_limit_hit(bucket, limit=limit, window=window)
            raise


admin.site.login_form = AdminLoginForm


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ["id", "name", "prefix", "created_at", "revoked_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(OperatorAdmin):
    list_display = ["name", "id", "created_at"]
    search_fields = ["name", "id"]
    readonly_fields = ["id", "created_at"]
    inlines = [ApiKeyInline]

    def get_deleted_objects(self, objs, request):
        # Listing an account's cascade would list every contact and event it has.
        return summarized_deletion(
            objs, cascade_note="with all its contacts, lists, segments, activity, suppression entries and API keys"
        )


@admin.register(ApiKey)
class ApiKeyAdmin(OperatorAdmin):
    """Keys are created here or by ``create_api_key``; the plaintext is shown once, the hash never."""

    list_display = ["id", "account", "name", "prefix", "created_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["account"]
    search_fields = ["id", "prefix", "name", "account__name"]
    autocomplete_fields = ["account"]
    readonly_fields = ["id", "prefix", "created_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        return ["account", "name"] if obj is None else ["id", "account", "name", "prefix", "created_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is None else [*self.readonly_fields, "account"]

    def save_model(self, request, obj, form, change):
        raw_key = None if change else obj.assign_new_secret()
        super().save_model(request, obj, form, change)
        if raw_key:
            messages.warning(request, f"New API key for {obj.account} (copy it now; it is not shown again): {raw_key}")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        count = api_keys_revoke(keys=queryset)
        messages.success(request, f"Revoked {count} key(s).")
