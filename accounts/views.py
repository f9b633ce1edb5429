from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from explainer_site.exceptions import ApplicationError

from .client_address import client_address
from .selectors import api_token_get
from .services import api_token_create, api_token_regenerate, signup_attempt_register


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True


def login_locked(request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None) -> HttpResponse:
    """What django-axes answers for a locked username + address, on the site's or the admin's login: the same
    login page again, saying how long to wait, with 429 (each attempt while locked restarts the wait)."""
    minutes = settings.EXPLAINER_LOGIN_LOCKOUT_MINUTES
    messages.error(request, f"Too many failed sign-in attempts. Wait {minutes} minute{'s' if minutes != 1 else ''} "
                            "and try again.")
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    next_url = request.POST.get(REDIRECT_FIELD_NAME, "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = ""
    if request.path.startswith(reverse("admin:index")):
        context = {**admin.site.each_context(request), "title": _("Log in"), "subtitle": None,
                   "app_path": request.get_full_path(), "username": "",
                   "form": AdminAuthenticationForm(request, initial={"username": username}),
                   REDIRECT_FIELD_NAME: next_url or reverse("admin:index")}
        return render(request, "admin/login.html", context, status=429)
    context = {"form": AuthenticationForm(request, initial={"username": username}), REDIRECT_FIELD_NAME: next_url}
    return render(request, "registration/login.html", context, status=429)


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("datasets:list")
    form = UserCreationForm(request.POST or None)
    if request.method == "POST":
        try:
            signup_attempt_register(address=client_address(request))
        except ApplicationError as error:
            messages.error(request, error.message)
            return render(request, "registration/signup.html", {"form": UserCreationForm()}, status=error.status)
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("datasets:list")
    return render(request, "registration/signup.html", {"form": form})


@never_cache  # the page shows the API token: no browser or proxy keeps a copy
@login_required
def account(request: HttpRequest) -> HttpResponse:
    """Who is logged in, how to use the API, and their own API token (never anyone else's)."""
    context = {"token": api_token_get(user=request.user), "api_root": request.build_absolute_uri("/api/"),
               "docs_url": reverse("api:docs")}
    return render(request, "accounts/account.html", context)


@never_cache
@login_required
def api_token(request: HttpRequest) -> HttpResponse:
    """POST: create the token, or (``regenerate``) replace it so the old key stops working. A GET, e.g. the address
    typed in, shows the account page."""
    if request.method == "POST":
        if request.POST.get("action") == "regenerate":
            api_token_regenerate(user=request.user)
            messages.success(request, "Your new API token is ready. The old one no longer works: give scripts "
                                      "the new one.")
        else:
            created = api_token_get(user=request.user) is None
            api_token_create(user=request.user)
            if created:
                messages.success(request, "Your API token is ready. Copy it into your script.")
    return redirect(reverse("account") + "#api-token")
