from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """The production algorithm with few iterations, so fixtures are cheap."""

    iterations = 1000


class CountingPBKDF2PasswordHasher(FastPBKDF2PasswordHasher):
    """Counts the runs of the hash function, for the tests that compare how much work checks cost."""

    runs = 0

    def encode(self, password, salt, iterations=None):
        type(self).runs += 1
        return super().encode(password, salt, iterations)


class CountingKeyedDigest:
    """Wraps `promotions_site.client_secrets._keyed_digest` and counts its runs."""

    def __init__(self, digest):
        self.digest = digest
        self.runs = 0

    def __call__(self, *args):
        self.runs += 1
        return self.digest(*args)
