"""Model fields of contacts."""

from phonenumber_field.modelfields import PhoneNumberDescriptor, PhoneNumberField
from phonenumber_field.phonenumber import to_python


class _ParseOnReadDescriptor(PhoneNumberDescriptor):
    """Keeps stored E.164 text as is until the attribute is read, then makes it a PhoneNumber once."""

    def __set__(self, instance, value):
        if isinstance(value, str) and value:
            instance.__dict__[self.field.name] = value
        else:
            super().__set__(instance, value)

    def __get__(self, instance, owner):
        value = super().__get__(instance, owner)
        if instance is not None and isinstance(value, str) and value:
            value = instance.__dict__[self.field.name] = to_python(value, region=self.field.region)
        return value


class StoredE164Field(PhoneNumberField):
    """A ``PhoneNumberField`` that does not re-parse what it stored.

    Every phone is validated and written in E.164 (contacts/validation.py).
    phonenumber_field parses each loaded value into a PhoneNumber (~10 µs)
    and checks it again on assignment: a quarter of a 50-contact page's CPU,
    though the API only sends the stored text back. Loaded values stay text
    until ``instance.phone`` is read; ``Contact.phone_e164`` reads the text.
    """

    descriptor_class = _ParseOnReadDescriptor

    def from_db_value(self, value, expression, connection):
        return value
