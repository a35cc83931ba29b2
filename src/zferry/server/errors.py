"""The server's errors: an HTTP status, a message, and a hint that says what to do."""

from __future__ import annotations

from typing import Optional


class ApiError(Exception):
    """Answered as `{"error": message, "hint": hint}` with `status`."""

    def __init__(self, status: int, message: str, hint: str = "", task: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint
        self.task = task  # the blocking task of a 409

    def body(self) -> dict[str, object]:
        """The JSON body of the answer."""
        body: dict[str, object] = {"error": self.message, "hint": self.hint}
        if self.task is not None:
            body["task_id"] = self.task
        return body


def bad_request(message: str, hint: str = "") -> ApiError:
    return ApiError(400, message, hint)


def not_found(message: str, hint: str = "") -> ApiError:
    return ApiError(404, message, hint)


def unprocessable(message: str, hint: str = "") -> ApiError:
    return ApiError(422, message, hint)
