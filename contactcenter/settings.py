"""Settings for the call-recording compliance back office.

Everything comes from the environment (django-environ) with embedded defaults, so the
project runs with nothing set: SQLite under ``var/``, Celery tasks in-process, recordings
on the local disk, a development key. When ``DEBUG`` is off the defaults that are only
safe on a developer's machine are refused, and the error names the variable to set.

The README's configuration table lists these variables in the same order.
"""

import base64
import binascii
import ipaddress
import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# Development-only values. Production refuses every one of them (see ``_require``).
DEV_SECRET_KEY = "dev-insecure-secret-key-do-not-use-in-production"  # noqa: S105
DEV_TWILIO_ACCOUNT_SID = "AC" + "0" * 32
DEV_TWILIO_AUTH_TOKEN = "dev-twilio-auth-token"  # noqa: S105
DEV_RECORDINGS_MASTER_KEYS = "dev-1:" + base64.urlsafe_b64encode(b"d" * 32).decode()
DEV_AUDIT_ANCHOR_KEY = base64.urlsafe_b64encode(b"a" * 32).decode()


def _fail(name, problem):
    raise ImproperlyConfigured(f"{name}: {problem}")


def _bool(name, default):
    """A strict boolean: a typo such as DEBUG=flase must not silently mean False."""
    raw = env.str(name, default="").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    _fail(name, f"expected true or false, got {raw!r}")


def _int(name, default, *, minimum=None):
    raw = env.str(name, default="").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        _fail(name, f"expected a whole number, got {raw!r}")
    if minimum is not None and value < minimum:
        _fail(name, f"must be at least {minimum}, got {value}")
    return value


def _url(name, default, *, schemes):
    value = env.str(name, default=default).strip()
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        _fail(name, f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return value.rstrip("/")


def _master_keys(name, default):
    """Parse ``kid:base64key,kid:base64key`` (newest first) into an ordered list of pairs."""
    raw = env.str(name, default=default).strip()
    keys = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        kid, sep, encoded = item.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", kid):
            _fail(name, "each key must look like KEY_ID:BASE64 (key id of letters, digits, _.-)")
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            _fail(name, f"key {kid!r} is not valid base64")
        if len(key) != 32:
            _fail(name, f"key {kid!r} must decode to 32 bytes (AES-256), got {len(key)}")
        if kid in dict(keys):
            _fail(name, f"key id {kid!r} appears twice")
        keys.append((kid, key))
    if not keys:
        _fail(name, "at least one key is required")
    return keys


# --- core ----------------------------------------------------------------------------------

DEBUG = _bool("DEBUG", True)
# Whether this is a production deployment, fixed at start (the test runner turns DEBUG off
# for its own reasons; this keeps the deployment's answer).
IS_PRODUCTION = not DEBUG

SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

# The URL Twilio uses to reach us. Webhook signatures are checked against this, never
# against the Host header or proxy headers, which an attacker can choose.
PUBLIC_BASE_URL = _url("PUBLIC_BASE_URL", "http://127.0.0.1:8000", schemes=("http", "https"))

try:
    DATABASES = {
        "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
    }
except (ImproperlyConfigured, KeyError, ValueError) as exc:
    _fail("DATABASE_URL", f"not a database URL this project supports ({exc})")
if DATABASES["default"].get("ENGINE") not in {
    "django.db.backends.postgresql",
    "django.db.backends.sqlite3",
}:
    _fail("DATABASE_URL", "use postgres://… (production) or sqlite:///… (development)")
DATABASES["default"]["CONN_MAX_AGE"] = _int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The development server, an in-process task and a worker may write at once: take the
    # write lock when a transaction begins (a read lock upgraded later can deadlock and fail
    # at once) and wait for it rather than fail.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    # The test database is a file, not memory, so a Celery worker a test starts shares it;
    # one per test run, so that two runs on one machine do not meet.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    # A database that does not answer must not hold a webhook past Twilio's 15 s: give up
    # connecting after a few seconds, and the caller is put through without recording.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = _int(
        "DATABASE_CONNECT_TIMEOUT", 3, minimum=1
    )
    # The back office reads pages of rows along an index: a parallel plan's workers take
    # longer to start (about 30 ms on two cores) than such a query takes. The planner is not
    # offered them unless DATABASE_PARALLEL_WORKERS says how many (docs/benchmarks.md).
    _parallel_workers = _int("DATABASE_PARALLEL_WORKERS", 0, minimum=0)
    DATABASES["default"]["OPTIONS"]["options"] = (
        f"-c max_parallel_workers_per_gather={_parallel_workers}"
    )
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# The owner of the tables, for ``manage.py migrate`` only (audit/management/commands/migrate.py
# connects as it, then grants DATABASE_URL's role what the application needs). The runtime
# role does not own the access audit trail, so it cannot disable its trigger. Same database,
# other credentials; unset: migrations run as DATABASE_URL's role.
DATABASE_MIGRATE_URL = env.str("DATABASE_MIGRATE_URL", default="").strip()
DATABASE_MIGRATE_CREDENTIALS = None
if DATABASE_MIGRATE_URL:
    try:
        _owner = environ.Env.db_url_config(DATABASE_MIGRATE_URL)
    except (ImproperlyConfigured, KeyError, ValueError) as exc:
        _fail("DATABASE_MIGRATE_URL", f"not a database URL this project supports ({exc})")
    if any(
        str(_owner.get(key) or "") != str(DATABASES["default"].get(key) or "")
        for key in ("ENGINE", "NAME", "HOST", "PORT")
    ):
        _fail("DATABASE_MIGRATE_URL", "must name the same database as DATABASE_URL")
    DATABASE_MIGRATE_CREDENTIALS = {"USER": _owner["USER"], "PASSWORD": _owner["PASSWORD"]}

REDIS_URL = env.str("REDIS_URL", default="").strip()
if REDIS_URL and urlsplit(REDIS_URL).scheme not in {"redis", "rediss"}:
    _fail("REDIS_URL", "expected redis://host:port/db or rediss://…")

# --- Twilio --------------------------------------------------------------------------------

TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default=DEV_TWILIO_ACCOUNT_SID).strip()
if not re.fullmatch(r"AC[0-9a-fA-F]{32}", TWILIO_ACCOUNT_SID):
    _fail("TWILIO_ACCOUNT_SID", "expected AC followed by 32 hexadecimal characters")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default=DEV_TWILIO_AUTH_TOKEN).strip()
TWILIO_API_BASE_URL = _url(
    "TWILIO_API_BASE_URL", "https://api.twilio.com", schemes=("http", "https")
)
# The development default is the local emulator's number, so that the portal's codes can be
# sent; in production the center's own number must be set for SMS and outbound calls.
TWILIO_CALLER_ID = env.str("TWILIO_CALLER_ID", default="+815012345678" if DEBUG else "").strip()
if TWILIO_CALLER_ID and not re.fullmatch(r"\+[1-9]\d{6,14}", TWILIO_CALLER_ID):
    _fail("TWILIO_CALLER_ID", "expected the center's number in E.164, e.g. +815012345678")
TWILIO_VERIFY_SERVICE_SID = env.str("TWILIO_VERIFY_SERVICE_SID", default="").strip()
if TWILIO_VERIFY_SERVICE_SID and not re.fullmatch(r"VA[0-9a-fA-F]{32}", TWILIO_VERIFY_SERVICE_SID):
    _fail("TWILIO_VERIFY_SERVICE_SID", "expected VA followed by 32 hexadecimal characters")
TWILIO_VERIFY_BASE_URL = _url(
    "TWILIO_VERIFY_BASE_URL", "https://verify.twilio.com", schemes=("http", "https")
)
# The Credentials API (accounts.twilio.com), where the public keys of Voice Recording
# Encryption are registered (manage.py twilio_recording_key).
TWILIO_ACCOUNTS_BASE_URL = _url(
    "TWILIO_ACCOUNTS_BASE_URL", "https://accounts.twilio.com", schemes=("http", "https")
)


def _recording_private_keys(name):
    """Voice Recording Encryption: ``CR…SID:/path/to/private-key.pem`` pairs, comma-separated
    (several while keys rotate). The PEM files are read here, at start; the keys live in this
    process only, never in the database. Empty: recordings are not encrypted at Twilio."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    keys = {}
    for pair in env.str(name, default="").split(","):
        if not pair.strip():
            continue
        sid, _, path = pair.strip().partition(":")
        if not re.fullmatch(r"CR[0-9a-fA-F]{32}", sid) or not path:
            _fail(name, f"expected CR…SID:/path/to/private-key.pem pairs, got {pair.strip()!r}")
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except OSError as exc:
            _fail(name, f"cannot read the private key of {sid} at {path}: {exc.strerror}")
        except (TypeError, ValueError):
            _fail(name, f"{path} is not an unencrypted PEM private key")
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
            _fail(name, f"{path} is not an RSA private key of at least 2048 bits")
        keys[sid] = key
    return keys


TWILIO_RECORDING_PRIVATE_KEYS = _recording_private_keys("TWILIO_RECORDING_PRIVATE_KEYS")
# Card payments on a live call (Twilio Pay, agent-assisted): the name of the Pay connector set
# up in Twilio's console (empty: the 「カード決済」 button is not offered), and the kind of token
# the connector returns.
TWILIO_PAY_CONNECTOR = env.str("TWILIO_PAY_CONNECTOR", default="").strip()
TWILIO_PAY_TOKEN_TYPE = env.str("TWILIO_PAY_TOKEN_TYPE", default="one-time").strip()
if TWILIO_PAY_TOKEN_TYPE not in {"one-time", "reusable"}:
    _fail("TWILIO_PAY_TOKEN_TYPE", "expected one-time or reusable")
# The operator's 「カード番号」 button pauses the call's recording for this many seconds (the
# caller reads the card number meanwhile); it resumes by itself then, or at the operator's word.
CARD_PAUSE_SECONDS = _int("CARD_PAUSE_SECONDS", 120, minimum=10)

# Where a caller is put through when the database cannot be read (the operators' list is in
# it): a number in E.164 or a sip: address, e.g. a ring group. Before it, the operators last
# read as available are rung, if that list is no older than FALLBACK_OPERATORS_MAX_AGE
# seconds (0: never). With neither, the caller hears an apology and the error is logged.
FALLBACK_DIAL_TARGET = env.str("FALLBACK_DIAL_TARGET", default="").strip()
if FALLBACK_DIAL_TARGET and not re.fullmatch(
    r"\+[1-9]\d{6,14}|sip:[^\s@]+@[^\s@]+", FALLBACK_DIAL_TARGET
):
    _fail("FALLBACK_DIAL_TARGET", "expected a number in E.164 (+81…) or a sip:user@host address")
FALLBACK_OPERATORS_MAX_AGE = _int("FALLBACK_OPERATORS_MAX_AGE", 600, minimum=0)

# --- recordings ----------------------------------------------------------------------------

RECORDINGS_MASTER_KEYS = _master_keys("RECORDINGS_MASTER_KEYS", DEV_RECORDINGS_MASTER_KEYS)
RECORDINGS_ROOT = Path(env.str("RECORDINGS_ROOT", default=str(VAR_DIR / "recordings")))
# /healthz fails below this much free space in the recordings storage (or below room for 20
# recordings the size of the largest of the last 7 days, if that is more).
RECORDINGS_MIN_FREE_MB = _int("RECORDINGS_MIN_FREE_MB", 500, minimum=0)
# How long a fetch holds its recording without a heartbeat (renewed every quarter of it while
# the audio streams); a killed worker's fetch is taken over this long after its last one.
RECORDINGS_FETCH_LEASE_SECONDS = _int("RECORDINGS_FETCH_LEASE_SECONDS", 120, minimum=2)

# --- audit trail ---------------------------------------------------------------------------

# The Ed25519 private key (URL-safe base64 of its 32 raw bytes) that signs the checkpoints of the
# audit trail's chain head; the database never holds it, so whoever rewrites the trail there
# cannot sign a checkpoint that agrees. Auditors keep its public key (manage.py verify_audit
# --public-key).
AUDIT_ANCHOR_KEY = env.str("AUDIT_ANCHOR_KEY", default=DEV_AUDIT_ANCHOR_KEY).strip()
try:
    _anchor_key = base64.urlsafe_b64decode(AUDIT_ANCHOR_KEY + "=" * (-len(AUDIT_ANCHOR_KEY) % 4))
except (binascii.Error, ValueError):
    _fail("AUDIT_ANCHOR_KEY", "not valid URL-safe base64")
if len(_anchor_key) != 32:
    _fail("AUDIT_ANCHOR_KEY", f"must decode to 32 bytes (an Ed25519 key), got {len(_anchor_key)}")
# Where the signed checkpoints are written; unset: audit-anchors/ in the recordings storage.
AUDIT_ANCHOR_DIR = env.str("AUDIT_ANCHOR_DIR", default="").strip()

# --- production guard ----------------------------------------------------------------------


def _require(name, ok, problem):
    if not ok:
        _fail(name, f"{problem} (required when DEBUG is off)")


if IS_PRODUCTION:
    _require(
        "SECRET_KEY",
        len(SECRET_KEY) >= 50 and SECRET_KEY != DEV_SECRET_KEY,
        "set a random value of at least 50 characters",
    )
    _require(
        "ALLOWED_HOSTS",
        bool(ALLOWED_HOSTS) and "*" not in ALLOWED_HOSTS,
        "list the host names this site is served under (no '*')",
    )
    _require(
        "PUBLIC_BASE_URL",
        PUBLIC_BASE_URL.startswith("https://"),
        "set the public https:// URL Twilio reaches this site at",
    )
    _require(
        "TWILIO_ACCOUNT_SID",
        TWILIO_ACCOUNT_SID != DEV_TWILIO_ACCOUNT_SID,
        "set your Twilio account SID",
    )
    _require(
        "TWILIO_AUTH_TOKEN",
        TWILIO_AUTH_TOKEN not in {"", DEV_TWILIO_AUTH_TOKEN},
        "set your Twilio auth token",
    )
    _require(
        "RECORDINGS_MASTER_KEYS",
        dict(RECORDINGS_MASTER_KEYS).keys().isdisjoint({"dev-1"}),
        "set your own key-encryption keys; the development key is public",
    )
    _require(
        "AUDIT_ANCHOR_KEY",
        AUDIT_ANCHOR_KEY != DEV_AUDIT_ANCHOR_KEY,
        "set your own Ed25519 key; the development key is public",
    )

# --- Django --------------------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Staff accounts: login lockout and the second factor (TOTP, recovery codes).
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "contactcenter",
    "consent",
    "privacy",
    "recordings",
    "audit",
    "training",
    "portal",
    # Personal-data breaches (漏えい等, APPI art. 26): incidents, scoping, reports, notifications.
    "incidents",
    "telephony",
    # The supervisor's dashboard: above the domain apps, whose figures it reads.
    "backoffice",
    "demo",
    "staff",
]

MIDDLEWARE = [
    # First: drops X-Forwarded-Proto that did not come from a trusted proxy, so that
    # SecurityMiddleware and request.is_secure() never believe a client's claim of HTTPS.
    "contactcenter.middleware.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "contactcenter.security.PermissionsPolicyMiddleware",
    "contactcenter.security.RejectNulQueryMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "contactcenter.middleware.JapaneseFirstLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A 403 or 405 with an empty body becomes a page in the caller's language.
    "contactcenter.views.EmptyErrorBodyMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "contactcenter.middleware.IdleSessionTimeoutMiddleware",
    "contactcenter.middleware.StaffSecondFactorMiddleware",
    "consent.middleware.OperatorAcknowledgementMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

if not DEBUG:
    # gunicorn serves the collected static files itself; runserver does it in development.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )

ROOT_URLCONF = "contactcenter.urls"
CSRF_FAILURE_VIEW = "contactcenter.views.csrf_failure"
WSGI_APPLICATION = "contactcenter.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# django-axes first: it refuses a locked-out username and address before any password check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- language and time ---------------------------------------------------------------------

LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

# The region used to read a phone number written without a country code.
PHONE_DEFAULT_REGION = "JP"

# --- files ---------------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # Encrypted recording blobs only; plaintext audio never reaches a storage backend.
    "recordings": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": str(RECORDINGS_ROOT),
            "directory_permissions_mode": 0o700,
            "file_permissions_mode": 0o600,
        },
    },
}
MEDIA_ROOT = VAR_DIR / "media"

# --- security ------------------------------------------------------------------------------

CSRF_TRUSTED_ORIGINS = ["{0.scheme}://{0.netloc}".format(urlsplit(PUBLIC_BASE_URL))]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 8 * 60 * 60  # one working shift
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): everything from this site only, no inline script or
# style (our templates have none; the tests keep it so), audio played from our own URLs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "media-src": ["'self'"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Permissions-Policy (contactcenter.security): no camera, microphone, position, payment…
PERMISSIONS_POLICY = {
    feature: ()
    for feature in (
        "accelerometer",
        "bluetooth",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "serial",
        "usb",
    )
}
# Cookies are never sent to another site's requests (SameSite) and, in production, only
# over HTTPS (Secure, below). The language cookie is read by the server only.
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_HTTPONLY = True

# Behind a TLS-terminating proxy Django sees plain HTTP. Only trust the proxy's header
# when the deployment says a proxy that sets it is in front (docker-compose does).
BEHIND_TLS_PROXY = _bool("BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def _networks(name, raw):
    """Comma-separated addresses or CIDRs (``10.0.0.0/8,192.0.2.1``) as ``ip_network``s."""
    networks = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            _fail(name, f"{item!r} is not an IP address or network (e.g. 172.16.0.0/12)")
    return networks


# The proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (contactcenter.proxies);
# a request from any other address is taken at its REMOTE_ADDR, its forwarded headers ignored.
TRUSTED_PROXIES = _networks("TRUSTED_PROXIES", env.str("TRUSTED_PROXIES", default=""))
if BEHIND_TLS_PROXY and not TRUSTED_PROXIES:
    _fail("TRUSTED_PROXIES", "list the proxy's addresses when BEHIND_TLS_PROXY is true")

if not DEBUG:
    SECURE_SSL_REDIRECT = True
    # Container health checks call /healthz over plain HTTP from inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # The preload flag lets the domain be added to browsers' HTTPS-only lists; a site
    # that must stay reachable over plain HTTP on a subdomain sets it to false.
    SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", True)

# --- email ---------------------------------------------------------------------------------

try:
    _email = env.email_url("EMAIL_URL", default="consolemail://")
except (ImproperlyConfigured, KeyError, ValueError) as exc:
    _fail(
        "EMAIL_URL", f"not an email URL (smtp+tls://user:password@host:587, consolemail://): {exc}"
    )
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="no-reply@localhost")

# --- customer requests ---------------------------------------------------------------------

# Days within which a customer's request must be answered (the queue shows it as overdue).
PORTAL_REQUEST_DUE_DAYS = _int("PORTAL_REQUEST_DUE_DAYS", 7, minimum=1)
# Recycled numbers (portal/ownership.py): a caller sees a call only by giving its day and time
# (within this many minutes either side), a limited number of times per proof of the number;
# a call older than this many days may be an earlier holder's and is confirmed by staff.
PORTAL_CALL_TIME_WINDOW_MINUTES = _int("PORTAL_CALL_TIME_WINDOW_MINUTES", 90, minimum=5)
PORTAL_CALL_LOOKUPS = _int("PORTAL_CALL_LOOKUPS", 10, minimum=1)
PORTAL_CALL_MAX_AGE_DAYS = _int("PORTAL_CALL_MAX_AGE_DAYS", 90, minimum=1)
SERVER_EMAIL = DEFAULT_FROM_EMAIL


def _prefixes(name, raw):
    """Comma-separated E.164 prefixes (``+8170,+8180``)."""
    prefixes = [part.strip() for part in raw.split(",") if part.strip()]
    for prefix in prefixes:
        if not re.fullmatch(r"\+[1-9][0-9]{0,14}", prefix):
            _fail(name, f"{prefix!r} is not an E.164 prefix such as +8190")
    return tuple(prefixes)


# Where the portal sends its codes (portal.services.may_receive): SMS to Japanese mobiles,
# calls to Japanese landlines and mobiles. Premium-rate, free-dial, shared-cost, UAN and
# personal numbers are refused whatever these say; 050 (IP phones) only if listed for calls.
PORTAL_SMS_ALLOWED_PREFIXES = _prefixes(
    "PORTAL_SMS_ALLOWED_PREFIXES",
    env.str("PORTAL_SMS_ALLOWED_PREFIXES", default="+8170,+8180,+8190"),
)
PORTAL_VOICE_ALLOWED_PREFIXES = _prefixes(
    "PORTAL_VOICE_ALLOWED_PREFIXES", env.str("PORTAL_VOICE_ALLOWED_PREFIXES", default="")
)
# Codes sent by the whole portal, all numbers together; past it nothing is sent and staff are
# emailed once per window (SMS pumping costs money per message).
PORTAL_SEND_BUDGET_PER_HOUR = _int("PORTAL_SEND_BUDGET_PER_HOUR", 100, minimum=1)
PORTAL_SEND_BUDGET_PER_DAY = _int("PORTAL_SEND_BUDGET_PER_DAY", 500, minimum=1)

# --- cache (rate limits of the customer portal) ------------------------------------------

# Shared by every process through Redis when it is configured; per process otherwise.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Celery --------------------------------------------------------------------------------

# Without REDIS_URL every task runs in-process, synchronously, when it is sent; the
# contactcenter app logs this once at start so nobody mistakes it for a production setup.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# Our tasks are idempotent (a task can run twice without harm), so acknowledge only after
# the work is done and put the message back if the worker process dies mid-task.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# With acks_late, Redis hands an unacknowledged message to another worker after the
# visibility timeout. It must exceed the longest task plus the longest retry countdown
# (fetching an hour of audio takes minutes; backoff is capped at 15 minutes), or a slow
# task runs twice at once; it also bounds how long a crashed worker's task waits. One hour.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 60 * 60}
CELERY_RESULT_EXPIRES = 60 * 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    # Tasks written to the outbox while Redis was down are published when it is back.
    "relay-outbox": {"task": "recordings.tasks.relay_outbox", "schedule": 60.0},
    # A recording paused for a card number resumes when its time is up, page open or not.
    "resume-card-pauses": {
        "task": "contactcenter.tasks.resume_expired_card_pauses",
        "schedule": 15.0,
    },
    # Recordings past retention and not held lose their key, file and Twilio copy.
    "purge-recordings": {"task": "recordings.tasks.purge_recordings", "schedule": 60.0 * 60},
    # Recordings whose fetch task was lost (Redis flushed, a worker killed) are queued again;
    # every minute, so a killed fetch is taken over soon after its lease runs out.
    "requeue-stalled-fetches": {
        "task": "recordings.tasks.requeue_stalled_fetches",
        "schedule": 60.0,
    },
    # Recordings and calls whose callbacks never reached us are brought in line with Twilio's
    # lists (each run reads back at least 24 h, so runs overlap).
    "reconcile-twilio": {"task": "recordings.tasks.reconcile_twilio", "schedule": 15.0 * 60},
    # Third-party provision records whose retention (1 or 3 years) ended are deleted, daily.
    "delete-expired-provision-records": {
        "task": "recordings.tasks.delete_expired_provision_records",
        "schedule": 24.0 * 60 * 60,
    },
    # The audit trail's chain head is signed and written outside the database (when it grew).
    "anchor-audit-trail": {"task": "audit.tasks.anchor_audit_trail", "schedule": 15.0 * 60},
    # Staff are reminded of foreign recipients whose periodic check (APPI art. 28) falls due.
    "remind-cross-border-checks": {
        "task": "privacy.tasks.remind_cross_border_checks",
        "schedule": 24.0 * 60 * 60,
    },
    # The dashboard's past days counted again (recordings of a past day fetched or purged late).
    "refresh-daily-figures": {
        "task": "backoffice.tasks.refresh_daily_figures",
        "schedule": 10.0 * 60,
    },
    # Compliance officers are reminded of breach reports (速報/確報) as they fall due.
    "remind-incident-deadlines": {
        "task": "incidents.tasks.remind_deadlines",
        "schedule": 60.0 * 60,
    },
}

# --- REST API ------------------------------------------------------------------------------

REST_FRAMEWORK = {
    # JSON nested deeper than the parser can recurse is a 400, not a RecursionError's 500.
    "DEFAULT_PARSER_CLASSES": [
        "contactcenter.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Call recording compliance API",
    "DESCRIPTION": "Live recording controls for operators and supervisors.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- staff accounts ------------------------------------------------------------------------

# A staff session ends after this many seconds without a request (SESSION_COOKIE_AGE still
# caps it at one shift).
SESSION_IDLE_TIMEOUT = _int("SESSION_IDLE_TIMEOUT", 30 * 60, minimum=60)
# After this many wrong passwords for one user name from one address, that pair is locked out
# for LOGIN_LOCKOUT_MINUTES, the right password included (django-axes).
AXES_FAILURE_LIMIT = _int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=_int("LOGIN_LOCKOUT_MINUTES", 30, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "audit.services.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/lockout.html"
# The second factor's secrets are shown once at enrolment; the issuer names the site in
# authenticator apps.
OTP_TOTP_ISSUER = "Call recording compliance"


def _rate(name, value):
    value = value.strip()
    if not re.fullmatch(r"[1-9]\d*/(second|minute|hour|day)", value):
        _fail(name, f"expected requests per period, e.g. 120/minute, got {value!r}")
    return value


REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "rest_framework.throttling.AnonRateThrottle",
    "rest_framework.throttling.UserRateThrottle",
]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "anon": _rate("API_THROTTLE_ANON_RATE", env.str("API_THROTTLE_ANON_RATE", default="30/minute")),
    "user": _rate(
        "API_THROTTLE_USER_RATE", env.str("API_THROTTLE_USER_RATE", default="120/minute")
    ),
}
REST_FRAMEWORK["EXCEPTION_HANDLER"] = "contactcenter.throttling.exception_handler"

# --- logging -------------------------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    _fail("LOG_LEVEL", "expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # Control characters in a message are escaped: a client's \n cannot forge a line.
        "plain": {
            "()": "contactcenter.security.ControlCharacterEscapingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        name: {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}
        for name in ("contactcenter", "consent", "privacy", "recordings")
    },
}

# --- personal-data breaches (incidents) ----------------------------------------------------

# The preliminary report (速報) to the PPC is due this many days after the breach became known
# (the PPC's guidance: "promptly", about 3 to 5 days); the final one (確報) after 30 days, or
# 60 for a suspected unlawful act (rule 7 (3)).
INCIDENT_PRELIMINARY_DAYS = _int("INCIDENT_PRELIMINARY_DAYS", 5, minimum=1)


def _days_before(name, raw):
    """Whole days before a deadline, comma-separated (``2,1``), largest first."""
    try:
        days = sorted({int(part) for part in raw.split(",") if part.strip()}, reverse=True)
    except ValueError:
        _fail(name, f"expected whole numbers of days separated by commas, e.g. 2,1, got {raw!r}")
    if any(day < 0 for day in days):
        _fail(name, "days before a deadline cannot be negative")
    return days


# Compliance officers are emailed this many days before each report's deadline (and once
# when it is overdue).
INCIDENT_REMIND_DAYS_BEFORE = _days_before(
    "INCIDENT_REMIND_DAYS_BEFORE", env.str("INCIDENT_REMIND_DAYS_BEFORE", default="2,1").strip()
)
# Above this many affected recordings, scoping runs as a Celery task instead of in the request.
INCIDENT_SCOPE_INLINE_LIMIT = _int("INCIDENT_SCOPE_INLINE_LIMIT", 5000, minimum=0)
