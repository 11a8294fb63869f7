from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """The production algorithm with few iterations, so fixtures are cheap."""

    iterations = 1000
