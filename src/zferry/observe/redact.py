"""Keep secrets out of every log: mask key material, passwords and tokens in a log line (NFR-SEC-002).

Paths stay (`-i /root/.ssh/id_ed25519`, `keylocation=file:///etc/zfs/key`): they are not secrets.
What is masked becomes `***`; masking is idempotent, so a line can pass several handlers.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

# A PEM private key block (any algorithm, encrypted or not); an unterminated one is masked to the end.
_PEM = re.compile(
    r"(-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----)(?:.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----)|.*)",
    re.DOTALL,
)
# key=value or "key": "value" where the key names a secret (password, SSHPASS, api_key, ...). A bare
# `key: value` is left alone: "tank/secrets: up to date" is a dataset name followed by a message.
_SENSITIVE_NAME = r"[\w.-]*(?:pass(?:word|wd|phrase)?|secret|token|api[_-]?key|access[_-]?key|credentials?)[\w.-]*"
_KEY_VALUE = re.compile(
    rf"""(?ix)
    \b({_SENSITIVE_NAME})              # the key
    (\s*=\s*|["']\s*[=:]\s*)       # its separator: '=', or ':' after a quoted key (JSON)
    ("[^"]*"|'[^']*'|[^\s,;&"'}}]+)  # the value: quoted, or up to a separator
    """
)
_AUTHORIZATION = re.compile(r"(?i)\b(authorization\s*[:=]\s*)(?:(\w+)\s+)?(\S+)")
_BEARER = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9._~+/=-]+)")
# sshpass -p SECRET (after any other sshpass options: -f FILE, -d FD, -P PROMPT, -e, -v)
_SSHPASS = re.compile(r"(\bsshpass(?:\s+-(?:[fdP]\s*\S+|[ev]))*\s+-p\s*)('[^']*'|\"[^\"]*\"|\S+)")
# scheme://user:password@host
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)([^/\s@]+)(@)", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with private keys, passwords, tokens and similar secrets replaced by `***`.

    >>> redact("sshpass -p hunter2 ssh -i /root/.ssh/id_rsa backup@nas")
    'sshpass -p *** ssh -i /root/.ssh/id_rsa backup@nas'
    >>> redact('password=hunter2 Authorization: Bearer abc.def')
    'password=*** Authorization: Bearer ***'
    """
    text = _PEM.sub(_mask_pem, text)
    text = _SSHPASS.sub(lambda m: m.group(1) + MASK, text)
    text = _AUTHORIZATION.sub(lambda m: m.group(1) + (m.group(2) + " " if m.group(2) else "") + MASK, text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    return _KEY_VALUE.sub(_mask_value, text)


def _mask_pem(match: re.Match[str]) -> str:
    end = match.group(3) or ""
    return f"{match.group(1)}{MASK}{end}"


def _mask_value(match: re.Match[str]) -> str:
    if match.group(1).lower().endswith("authentication"):  # ssh -o PasswordAuthentication=no is no secret
        return match.group(0)
    value = match.group(3)
    quote = value[0] if value[:1] in "\"'" and len(value) > 1 else ""
    return f"{match.group(1)}{match.group(2)}{quote}{MASK}{quote}"


_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    """The fields a caller added to `record` with `extra=` (not LogRecord's own)."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRIBUTES and not k.startswith("_")}


class RedactingFilter(logging.Filter):
    """A handler filter that masks secrets in a record's message, extras, exception and stack text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in extra_fields(record).items():
            if isinstance(value, str):
                setattr(record, key, redact(value))
        return True
