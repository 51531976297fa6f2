"""The domain exceptions. Each carries a message meant for the person who caused it."""

from __future__ import annotations


class AnnotateError(Exception):
    """Base of every error the tool reports to a user without a traceback."""


class SchemaError(AnnotateError):
    """A label schema file is missing, malformed, or inconsistent."""


class ImportProblem(AnnotateError):
    """An input file has one or more bad rows; nothing was imported."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = problems[:50]
        more = f"\n... and {len(problems) - 50} more problems" if len(problems) > 50 else ""
        super().__init__("\n".join(head) + more)


class NotFound(AnnotateError):
    """A named campaign, item, user or release does not exist."""


class Conflict(AnnotateError):
    """The request clashes with existing state (duplicate name, immutable object)."""


class PermissionDenied(AnnotateError):
    """The acting user's role does not allow this operation."""


class AuthError(AnnotateError):
    """Sign-in failed: unknown user, wrong password, or too many attempts."""


class ValidationProblem(AnnotateError):
    """A label or other submitted value breaks the schema's rules."""


class StorageUnavailable(AnnotateError):
    """The database cannot be reached right now; the operation can be retried."""


class AgreementInputError(AnnotateError, ValueError):
    """Labels handed to the agreement functions do not fit their domain or shape."""


class StaleSession(PermissionDenied):
    """The acting user changed (role, active flag, password, sign-out) since they were loaded."""


class SignInDelayed(AuthError):
    """Too many recent failed sign-ins: the next attempt must wait `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigError(AnnotateError):
    """A setting (ANNOTATE_* variable) or a file it names is unusable."""
