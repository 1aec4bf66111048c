"""Who sent a request: the client's address behind the reverse proxies we trust.

Behind a proxy, ``REMOTE_ADDR`` is the proxy's address, and the client's is in
``X-Forwarded-For``, which each proxy appends to. Anyone can send that header, so it is read
only when the request comes from a proxy in ``TRUSTED_PROXIES``, and from the right: the
right-most address that is not a trusted proxy is the last hop we can vouch for. Whatever a
client wrote to the left of it is ignored.
"""

import ipaddress

from django.conf import settings


def is_trusted_proxy(address):
    """Whether ``address`` (text) is one of ``TRUSTED_PROXIES``."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in settings.TRUSTED_PROXIES)


def client_address(request):
    """The client's IP address as text, or None when the request does not say one.

    ``REMOTE_ADDR`` unless it is a trusted proxy; then the right-most address of
    ``X-Forwarded-For`` that is not a trusted proxy (a malformed entry there stops the walk:
    nothing to its left can be vouched for, so the hop before it is taken).
    """
    remote = (request.META.get("REMOTE_ADDR") or "").strip()
    if not is_trusted_proxy(remote):
        return _valid(remote)
    client = remote
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    for hop in reversed([hop.strip() for hop in hops if hop.strip()]):
        if _valid(hop) is None:
            break
        client = hop
        if not is_trusted_proxy(hop):
            break
    return _valid(client)


def forwarded_by_trusted_proxy(request):
    """Whether the request's forwarded headers (protocol, client) may be believed."""
    return is_trusted_proxy(request.META.get("REMOTE_ADDR"))


def _valid(address):
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None
