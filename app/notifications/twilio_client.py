"""Factory for a real ``twilio.rest.Client`` whose API calls can be redirected.

``make_twilio_client(..., api_base_url="http://127.0.0.1:8765")`` sends every
request meant for ``https://*.twilio.com`` to that base URL instead (path and
query are kept), which lets tests run the real SDK against a local fake.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

__all__ = ["RedirectingTwilioHttpClient", "make_twilio_client"]


def _is_twilio_host(host: Optional[str]) -> bool:
    host = (host or "").lower().rstrip(".")
    return host == "twilio.com" or host.endswith(".twilio.com")


class RedirectingTwilioHttpClient(TwilioHttpClient):
    """``TwilioHttpClient`` that rewrites ``*.twilio.com`` URLs to ``api_base_url``.

    With ``api_base_url=None`` it behaves exactly like ``TwilioHttpClient``.
    Call :meth:`close` to release pooled connections.
    """

    def __init__(self, api_base_url: Optional[str] = None, timeout: Optional[float] = None) -> None:
        super().__init__(pool_connections=True, timeout=timeout)
        self.api_base_url: Optional[str] = None
        self._base: Optional[Tuple[str, str, str]] = None
        if api_base_url is not None:
            parts = urlsplit(api_base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"api_base_url must be an absolute http(s) URL, got {api_base_url!r}")
            if parts.query or parts.fragment:
                raise ValueError(f"api_base_url must not carry a query or fragment: {api_base_url!r}")
            self._base = (parts.scheme, parts.netloc, parts.path.rstrip("/"))
            self.api_base_url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))

    def rewrite_url(self, url: str) -> str:
        """Return ``url`` pointed at ``api_base_url`` if it targets a Twilio host."""
        if self._base is None:
            return url
        parts = urlsplit(url)
        if not _is_twilio_host(parts.hostname):
            return url
        scheme, netloc, prefix = self._base
        return urlunsplit((scheme, netloc, prefix + (parts.path or "/"), parts.query, parts.fragment))

    def request(
        self,
        method: str,
        url: str,
        params: Optional[Dict[str, object]] = None,
        data: Optional[Dict[str, object]] = None,
        headers: Optional[Dict[str, str]] = None,
        auth: Optional[Tuple[str, str]] = None,
        timeout: Optional[float] = None,
        allow_redirects: bool = False,
    ) -> Response:
        return super().request(
            method,
            self.rewrite_url(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )

    def close(self) -> None:
        """Close the pooled ``requests`` session (idempotent)."""
        if self.session is not None:
            self.session.close()


def make_twilio_client(
    account_sid: str,
    auth_token: str,
    api_base_url: Optional[str] = None,
    timeout: float = 10.0,
) -> Client:
    """Build a Twilio REST client; ``timeout`` (seconds) bounds every HTTP call.

    The client's ``http_client`` is a :class:`RedirectingTwilioHttpClient`;
    ``client.http_client.close()`` releases its connections.
    """
    if timeout is None or timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    http_client = RedirectingTwilioHttpClient(api_base_url=api_base_url, timeout=timeout)
    return Client(account_sid, auth_token, http_client=http_client)
