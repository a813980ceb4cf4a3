"""Account pages under /accounts/ (login and logout themselves are in config/urls.py)."""

from django.urls import path

from trial import views_accounts

app_name = "accounts"

urlpatterns = [
    path("login/code/", views_accounts.verify, name="verify"),
    path("two-factor/", views_accounts.two_factor, name="two-factor"),
    path("password/", views_accounts.PasswordChangeView.as_view(), name="password-change"),
    path(
        "password/done/",
        views_accounts.PasswordChangeDoneView.as_view(),
        name="password-change-done",
    ),
    path("log/", views_accounts.login_log, name="login-log"),
]
