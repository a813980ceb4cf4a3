"""Account pages: login (with the second step for TOTP users), password change, two-factor
enrollment and the login log. The rules live in trial/accounts.py; these views parse and render.
"""

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_failure_limit
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.signals import user_login_failed
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from trial import accounts
from trial.models import LoginEvent

LOGIN_LOG_PAGE_SIZE = 50


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data["code"].split())
        if not code.isdigit() or len(code) != 6:
            raise forms.ValidationError(_("Enter the 6 digits your authenticator app shows."))
        return code


class LoginView(auth_views.LoginView):
    """The password step. A user with a confirmed TOTP device is not logged in yet: the code
    page finishes the login. `next` is honoured only when it stays on this site."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return super().get_context_data(idle_minutes=settings.SESSION_IDLE_MINUTES, **kwargs)

    def form_valid(self, form):
        user = form.get_user()
        if accounts.confirmed_device(user) is None:
            return super().form_valid(form)
        accounts.pending_login_start(self.request, user=user, next_url=self.get_success_url())
        return redirect("accounts:verify")


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """The page shown instead of the login while a user name is locked out from this address
    (AXES_LOCKOUT_CALLABLE; status 429)."""
    context = {
        "failure_limit": get_failure_limit(request, credentials),
        "username": get_client_username(request, credentials) or "",
        "cooloff_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
    }
    return render(request, "registration/locked_out.html", context, status=429)


def _wrong_code(request: HttpRequest, username: str) -> None:
    """A wrong code counts as a failed login: the log records it and axes counts it towards
    the lockout of this user name from this address (its middleware shows the lockout page)."""
    user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """The code step: after the password (login pending), or for a logged-in session that still
    owes its code (TwoFactorMiddleware sends it here)."""
    if request.user.is_authenticated:
        user, backend = request.user, request.session.get(BACKEND_SESSION_KEY, "")
        next_url = accounts.safe_next(request, request.POST.get("next") or request.GET.get("next"))
        if getattr(request.user, "is_verified", lambda: False)():
            return redirect(next_url)
    else:
        pending = accounts.pending_login(request)
        if pending is None:
            messages.info(request, _("Log in with your password first."))
            return redirect("login")
        user, backend, next_url = pending
    device = accounts.confirmed_device(user)
    if device is None:  # removed by an administrator meanwhile: enroll again
        return redirect("accounts:two-factor")
    credentials = {"username": user.get_username()}
    if AxesProxyHandler.is_locked(request, credentials):
        return lockout_response(request, None, credentials)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        wait = accounts.totp_wait_seconds(device)
        if wait:
            form.add_error(
                "code",
                _("Too many wrong codes: wait %(seconds)d seconds, then try the new code.")
                % {"seconds": wait},
            )
        elif accounts.totp_code_check(device=device, code=form.cleaned_data["code"]):
            if not request.user.is_authenticated:
                auth_login(request, user, backend=backend)
            otp_login(request, device)
            return redirect(next_url)
        else:
            _wrong_code(request, user.get_username())
            form.add_error("code", _("This code is wrong or has expired."))
    context = {"form": form, "next": next_url, "username": user.get_username()}
    return render(request, "trial/accounts/verify.html", context)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def two_factor(request: HttpRequest) -> HttpResponse:
    """Turn on two-factor: scan the QR code (or type the secret), then confirm with a code. Once
    on, the page says so (an administrator removes a lost device in the admin)."""
    device = accounts.confirmed_device(request.user)
    required = accounts.two_factor_required_by_role(request.user)
    next_url = accounts.safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if device is not None:
        context = {"device": device, "required": required, "next": next_url}
        return render(request, "trial/accounts/two_factor.html", context)
    enrolling = accounts.totp_enrollment_device(user=request.user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        wait = accounts.totp_wait_seconds(enrolling)
        if wait:
            form.add_error(
                "code",
                _("Too many wrong codes: wait %(seconds)d seconds, then try the new code.")
                % {"seconds": wait},
            )
        elif accounts.totp_enrollment_confirm(
            request=request, device=enrolling, code=form.cleaned_data["code"]
        ):
            messages.success(
                request,
                _("Two-factor login is on: from now on you give a code after your password."),
            )
            return redirect(next_url)
        else:
            form.add_error(
                "code",
                _("This code is wrong or has expired: check the time on your phone and try again."),
            )
    context = {
        "form": form,
        "required": required,
        "next": next_url,
        "qr_svg": accounts.totp_qr_svg(enrolling),
        "secret": accounts.totp_secret_base32(enrolling),
    }
    return render(request, "trial/accounts/two_factor.html", context)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Change one's own password (the policy of AUTH_PASSWORD_VALIDATORS applies)."""

    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("accounts:password-change-done")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["form_list"] = [context["form"]]
        return context


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "registration/password_change_done.html"


class LoginLogFilterForm(forms.Form):
    user = forms.CharField(label=gettext_lazy("User name"), required=False, max_length=150)
    kind = forms.ChoiceField(
        label=gettext_lazy("Event"),
        required=False,
        choices=[("", gettext_lazy("All events")), *LoginEvent.Kind.choices],
    )
    date_from = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error(
                "date_to",
                _("The end date (%(end)s) is before the start date (%(start)s).")
                % {"end": end.isoformat(), "start": start.isoformat()},
            )
        return cleaned

    def as_filter(self) -> accounts.LoginLogFilter:
        data = self.cleaned_data if self.is_valid() else {}
        return accounts.LoginLogFilter(
            username=(data.get("user") or "").strip(),
            kind=data.get("kind") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )


@login_required
@permission_required("trial.view_login_log", raise_exception=True)
@require_http_methods(["GET"])
def login_log(request: HttpRequest) -> HttpResponse:
    """Who logged in, out, failed, was locked out or timed out: everything for data managers,
    the users of their own sites for site administrators. `?format=csv` downloads the
    filtered events."""
    form = LoginLogFilterForm(request.GET or None)
    events = accounts.login_event_list(viewer=request.user, filters=form.as_filter())
    if request.GET.get("format") == "csv" and (not form.is_bound or form.is_valid()):
        response = HttpResponse(
            accounts.login_events_csv(events.iterator()), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="login-log.csv"'
        return response
    page = Paginator(events, LOGIN_LOG_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "sees_all": accounts.sees_every_login_event(request.user),
        "idle_minutes": settings.SESSION_IDLE_MINUTES,
    }
    return render(request, "trial/accounts/login_log.html", context)
