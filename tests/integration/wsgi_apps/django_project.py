"""A minimal Django project in one module: settings in code, a few views, and the WSGI
application from `django.core.wsgi.get_wsgi_application()`."""

import django
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="tests-only-not-a-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Hello from Django", content_type="text/plain")


def echo(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "method": request.method,
            "path": request.path,
            "query": {k: request.GET.getlist(k) for k in request.GET},
            "form": {k: request.POST.getlist(k) for k in request.POST},
            "body_length": len(request.body),
            "content_type": request.content_type,
            "cookies": request.COOKIES,
            "remote_addr": request.META["REMOTE_ADDR"],
            "host": request.get_host(),
            "absolute_uri": request.build_absolute_uri(),
            "secure": request.is_secure(),
            "user_agent": request.headers.get("User-Agent"),
        }
    )


def cafe(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"path={request.path}", content_type="text/plain; charset=utf-8")


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the view failed")


urlpatterns = [
    path("", index),
    path("echo/", echo),
    path("café/", cafe),
    path("boom/", boom),
]

application = get_wsgi_application()
