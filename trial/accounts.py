"""Account security: the login log, the idle-session timeout, the TOTP second factor.

What lives where:
- Lockout after repeated failures is django-axes (settings AXES_*); `client_ip` is its idea of
  the client's address, and the login log uses the same one.
- `LoginEvent` rows are written by the receivers below, for every login, logout, failed login
  (wrong password, wrong second-factor code, API token refused), lockout and idle expiry; never
  with the password.
- `IdleSessionMiddleware` ends a session after SESSION_IDLE_MINUTES without a request.
- `TwoFactorMiddleware` keeps a session that still owes its second factor (a confirmed TOTP
  device, or a role named in REQUIRE_2FA_ROLES) on the code or enrollment page.

The receivers are connected when this module is imported: the settings' MIDDLEWARE imports it
when the request handler starts, and TrialConfig.ready() imports it for every other entry
point (shell, management commands, tests that log in before any request).
"""

import base64
import csv
import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import qrcode
import qrcode.image.svg
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, get_user_model, logout
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import QuerySet
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from trial.models import LoginEvent, Role, SiteMembership
from trial.scoping import site_ids_for

# Session keys (prefixed: the session is shared with Django, axes and django-otp).
LAST_ACTIVITY_KEY = "plm_last_activity"  # Unix seconds of the last request seen
TWO_FACTOR_KEY = "plm_2fa_required"  # this session owes a second factor
PENDING_LOGIN_KEY = "plm_pending_login"  # password right, code still to come

# The last-activity stamp is rewritten at most this often, so an active user's pages do not
# each write the session row: the idle limit is exact to within this many seconds.
TOUCH_SECONDS = 60
# How long the code page waits for the code after a right password.
PENDING_LOGIN_SECONDS = 5 * 60
USER_AGENT_MAX = 300


def clock() -> datetime:
    """The current time; tests replace it to travel in time."""
    return timezone.now()


# --- Who is asking ---------------------------------------------------------------------------


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: the connection's, or behind TRUSTED_PROXY_COUNT reverse proxies
    the entry that many from the right of X-Forwarded-For (what the outermost trusted proxy
    saw; entries further left come from the client and can be forged). Also axes' lookup
    (AXES_CLIENT_IP_CALLABLE), so a lockout and the log name the same address."""
    meta = getattr(request, "META", {}) or {}
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies > 0:
        forwarded = [p.strip() for p in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [p for p in forwarded if p]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return meta.get("REMOTE_ADDR") or None


def _user_agent(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    return (getattr(request, "META", {}) or {}).get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX]


# --- The login log (writes) ------------------------------------------------------------------


def login_event_record(
    *,
    kind: str,
    request: HttpRequest | None,
    user: AbstractBaseUser | None = None,
    username: str = "",
) -> LoginEvent:
    """Write one LoginEvent. `user` is looked up from `username` when not given (a failed login
    for an existing account is attributed to it); an unknown name is kept as given."""
    username = (username or (user.get_username() if user else ""))[:150]
    if user is None and username:
        user = get_user_model().objects.filter(username=username).first()
    ip = client_ip(request) if request is not None else None
    return LoginEvent.objects.create(
        kind=kind,
        user=user,
        username=username,
        ip_address=ip,
        user_agent=_user_agent(request),
    )


@receiver(user_logged_in, dispatch_uid="trial.accounts.logged_in")
def _on_logged_in(sender, request: HttpRequest | None, user, **kwargs) -> None:
    login_event_record(kind=LoginEvent.Kind.LOGIN, request=request, user=user)
    session = getattr(request, "session", None)
    if session is not None:
        session[LAST_ACTIVITY_KEY] = int(clock().timestamp())
        session[TWO_FACTOR_KEY] = two_factor_required(user)
        session.pop(PENDING_LOGIN_KEY, None)


@receiver(user_logged_out, dispatch_uid="trial.accounts.logged_out")
def _on_logged_out(sender, request: HttpRequest | None, user, **kwargs) -> None:
    if user is None:  # logging out of a session that had no user
        return
    expired = getattr(request, "_plm_session_expired", False)
    kind = LoginEvent.Kind.SESSION_EXPIRED if expired else LoginEvent.Kind.LOGOUT
    login_event_record(kind=kind, request=request, user=user)


@receiver(user_login_failed, dispatch_uid="trial.accounts.login_failed")
def _on_login_failed(sender, credentials: dict, request: HttpRequest | None = None, **kwargs):
    # Django has already masked the password in `credentials`; only the name is kept.
    username = str((credentials or {}).get("username") or "")
    login_event_record(kind=LoginEvent.Kind.FAILED, request=request, username=username)


@receiver(user_locked_out, dispatch_uid="trial.accounts.locked_out")
def _on_locked_out(sender, request: HttpRequest | None, username: str | None, **kwargs) -> None:
    login_event_record(kind=LoginEvent.Kind.LOCKED_OUT, request=request, username=username or "")


# --- The login log (reads) -------------------------------------------------------------------


@dataclass(frozen=True)
class LoginLogFilter:
    username: str = ""
    kind: str = ""
    date_from: date | None = None
    date_to: date | None = None


def sees_every_login_event(viewer: AbstractBaseUser) -> bool:
    """Data managers (and superusers) read the whole log; anyone else with view_login_log (site
    administrators) reads the events of the users of their own sites only."""
    if viewer.is_superuser:
        return True
    return viewer.groups.filter(name=Role.DATA_MANAGER).exists()


def login_event_list(*, viewer: AbstractBaseUser, filters: LoginLogFilter) -> QuerySet:
    """The LoginEvents `viewer` may read, newest first, narrowed by `filters` (user name
    contains, kind, local dates inclusive). Events of unknown user names (no account) are for
    those who see every event only."""
    events = LoginEvent.objects.select_related("user")
    if not sees_every_login_event(viewer):
        members = SiteMembership.objects.filter(site_id__in=site_ids_for(viewer)).values("user_id")
        events = events.filter(user_id__in=members)
    if filters.username:
        events = events.filter(username__icontains=filters.username)
    if filters.kind:
        events = events.filter(kind=filters.kind)
    zone = timezone.get_current_timezone()
    if filters.date_from:
        start = datetime.combine(filters.date_from, datetime.min.time(), tzinfo=zone)
        events = events.filter(at__gte=start)
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), datetime.min.time(), zone)
        events = events.filter(at__lt=end)
    return events.order_by("-at", "-id")


CSV_COLUMNS = ("at", "event", "username", "user", "ip_address", "user_agent")


def login_events_csv(events: Iterable[LoginEvent]) -> str:
    """The events as CSV text (one header row), times in the local time zone."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for event in events:
        writer.writerow(
            [
                timezone.localtime(event.at).isoformat(timespec="seconds"),
                event.kind,
                _csv_safe(event.username),
                _csv_safe(event.user.get_full_name() if event.user else ""),
                event.ip_address or "",
                _csv_safe(event.user_agent),
            ]
        )
    return out.getvalue()


def _csv_safe(value: str) -> str:
    # User names and browser strings come from whoever typed them: a leading = + - @ would
    # make a spreadsheet run them as a formula.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


# --- Second factor (TOTP) --------------------------------------------------------------------


def two_factor_roles() -> set[str]:
    """REQUIRE_2FA_ROLES, checked against the role names (a typo would silently require
    nothing, so it stops the start-up instead)."""
    wanted = set(settings.REQUIRE_2FA_ROLES)
    unknown = wanted - set(Role.values)
    if unknown:
        raise ImproperlyConfigured(
            "REQUIRE_2FA_ROLES names unknown roles %s; the roles are %s."
            % (", ".join(sorted(unknown)), ", ".join(Role.values))
        )
    return wanted


def two_factor_required_by_role(user: AbstractBaseUser) -> bool:
    roles = two_factor_roles()
    return bool(roles) and user.groups.filter(name__in=roles).exists()


def confirmed_device(user: AbstractBaseUser) -> TOTPDevice | None:
    """The user's confirmed TOTP device, if they enrolled one."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def two_factor_required(user: AbstractBaseUser) -> bool:
    """True when a session of `user` must pass a TOTP code: they enrolled a device, or their
    role is listed in REQUIRE_2FA_ROLES (then they must enroll first)."""
    return TOTPDevice.objects.filter(
        user=user, confirmed=True
    ).exists() or two_factor_required_by_role(user)


@transaction.atomic
def totp_enrollment_device(*, user: AbstractBaseUser) -> TOTPDevice:
    """The unconfirmed device `user` is enrolling (created with a fresh random key the first
    time; the same one until confirmed, so reloading the page keeps the QR code valid).
    Raises ValueError when the user already has a confirmed device."""
    if confirmed_device(user) is not None:
        raise ValueError("two-factor is already on")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
    return device


def totp_secret_base32(device: TOTPDevice) -> str:
    """The key as people type it into an authenticator app (base32, no padding)."""
    return base64.b32encode(device.bin_key).decode("ascii").rstrip("=")


def totp_qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// URL as an inline SVG QR code (no image file, no CDN)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="unicode")


def _normalized_code(code: str) -> str:
    return "".join(code.split())


def totp_wait_seconds(device: TOTPDevice) -> int:
    """Seconds before `device` accepts another try (django-otp slows guessing down after each
    wrong code), or 0."""
    allowed, info = device.verify_is_allowed()
    if allowed or not info:
        return 0
    until = info.get("locked_until")
    if until is None:
        return 0
    return max(1, int((until - timezone.now()).total_seconds()) + 1)


@transaction.atomic
def totp_enrollment_confirm(*, request: HttpRequest, device: TOTPDevice, code: str) -> bool:
    """Confirm `device` with a code from the app: on success it becomes the user's second
    factor, the session is marked verified and must stay so. False on a wrong code."""
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
    if device.confirmed or not device.verify_token(_normalized_code(code)):
        return False
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    # Any other half-finished enrollment of this user is dropped: one device is the factor.
    TOTPDevice.objects.filter(user=device.user, confirmed=False).delete()
    otp_login(request, device)
    request.session[TWO_FACTOR_KEY] = True
    return True


def totp_code_check(*, device: TOTPDevice, code: str) -> bool:
    """True when `code` is the device's current code (and not one used before)."""
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        return locked.verify_token(_normalized_code(code))


# --- The two-step login ----------------------------------------------------------------------


def safe_next(request: HttpRequest, url: str | None) -> str:
    """`url` when it stays on this site, else the page after login (never an open redirect)."""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return reverse(settings.LOGIN_REDIRECT_URL)


def pending_login_start(request: HttpRequest, *, user: AbstractBaseUser, next_url: str) -> None:
    """Remember that `user` gave the right password here; the code page finishes the login."""
    request.session.cycle_key()  # a new session id before the account is tied to it
    request.session[PENDING_LOGIN_KEY] = {
        "user": user.pk,
        "backend": getattr(user, "backend", settings.AUTHENTICATION_BACKENDS[-1]),
        "next": next_url,
        "at": int(time.time()),
    }


def pending_login(request: HttpRequest) -> tuple[AbstractBaseUser, str, str] | None:
    """(user, backend, next) of a password accepted less than PENDING_LOGIN_SECONDS ago."""
    pending = request.session.get(PENDING_LOGIN_KEY)
    if not pending or time.time() - pending.get("at", 0) > PENDING_LOGIN_SECONDS:
        request.session.pop(PENDING_LOGIN_KEY, None)
        return None
    user = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
    if user is None:
        request.session.pop(PENDING_LOGIN_KEY, None)
        return None
    return user, pending["backend"], pending["next"]


# --- Middleware ------------------------------------------------------------------------------


class IdleSessionMiddleware:
    """Ends a logged-in session after SESSION_IDLE_MINUTES without a request: the user is logged
    out (LoginEvent "expired"), the next page asks for the login again and says why. Sessions
    without a user are left alone; nothing is read from the database for them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = request.session
        if SESSION_KEY in session:
            now = int(clock().timestamp())
            last = session.get(LAST_ACTIVITY_KEY)
            idle_limit = settings.SESSION_IDLE_MINUTES * 60
            if last is not None and now - last > idle_limit:
                request._plm_session_expired = True
                logout(request)
                messages.info(
                    request,
                    _(
                        "Your session ended after %(minutes)d minutes without activity. "
                        "Log in again to continue."
                    )
                    % {"minutes": settings.SESSION_IDLE_MINUTES},
                )
            elif last is None or now - last >= TOUCH_SECONDS:
                session[LAST_ACTIVITY_KEY] = now
        return self.get_response(request)


class TwoFactorMiddleware:
    """A session that owes a second factor (see `two_factor_required`) reaches only the code
    page, the enrollment page, logout and the language switch until the code is given; anything
    else redirects there (API calls get 403)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        two_factor_roles()  # fail at start-up on a misspelt role
        self._open_paths: set[str] | None = None

    def _open(self, path: str) -> bool:
        if self._open_paths is None:
            self._open_paths = {
                reverse(name)
                for name in ("logout", "set_language", "accounts:two-factor", "accounts:verify")
            }
        return path in self._open_paths or path.startswith("/" + settings.STATIC_URL.lstrip("/"))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.session.get(TWO_FACTOR_KEY) and SESSION_KEY in request.session:
            user = request.user
            verified = getattr(user, "is_verified", None)
            owes_code = user.is_authenticated and not (verified and verified())
            if owes_code and not self._open(request.path_info):
                return self._refuse(request, user)
        return self.get_response(request)

    def _refuse(self, request: HttpRequest, user: AbstractBaseUser | AnonymousUser):
        if request.path_info.startswith("/api/"):
            return HttpResponse(
                '{"detail": "Give your two-factor code in the browser first."}',
                status=403,
                content_type="application/json",
            )
        name = "accounts:verify" if confirmed_device(user) else "accounts:two-factor"
        target = reverse(name)
        if request.method == "GET":
            target += "?" + urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(target)
