"""Dashboard pages over HTTP: login sets a locked-down cookie, pages and assets are served."""

from __future__ import annotations

from importlib import resources

from fastapi.testclient import TestClient
from pydantic import SecretStr

from voxgate.api.app import create_app
from voxgate.config import load_settings
from voxgate.observability.metrics import REGISTRY

TOKEN = "dash-token-123"


def client() -> TestClient:
    settings = load_settings()
    settings.auth.api_tokens = [SecretStr(TOKEN)]
    return TestClient(create_app(settings), follow_redirects=False)


def test_login_page_when_signed_out() -> None:
    r = client().get("/dashboard")
    assert r.status_code == 200 and 'action="/dashboard/login"' in r.text
    assert "app.js" not in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_login_sets_httponly_strict_cookie_and_opens_the_app() -> None:
    c = client()
    r = c.post("/dashboard/login", data={"token": TOKEN})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"voxgate_token={TOKEN};")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered
    assert "max-age=43200" in lowered and "secure" not in lowered  # plain http in the test
    page = c.get("/dashboard")
    assert page.status_code == 200 and "/dashboard/static/app.js" in page.text
    assert c.get("/v1/calls").status_code == 200  # the cookie authenticates the API too


def test_bad_token_is_rejected_and_counted() -> None:
    c = client()
    before = REGISTRY.get_sample_value("voxgate_auth_failures_total", {"surface": "dashboard"}) or 0
    r = c.post("/dashboard/login", data={"token": "wrong"})
    assert r.status_code == 401 and "not valid" in r.text and "wrong" not in r.text
    assert "set-cookie" not in r.headers
    after = REGISTRY.get_sample_value("voxgate_auth_failures_total", {"surface": "dashboard"})
    assert after == before + 1
    assert "app.js" not in c.get("/dashboard").text


def test_login_without_a_token_field_is_422() -> None:
    assert client().post("/dashboard/login", data={}).status_code == 422


def test_logout_clears_the_cookie() -> None:
    c = client()
    c.post("/dashboard/login", data={"token": TOKEN})
    r = c.post("/dashboard/logout")
    assert r.status_code == 303
    assert 'voxgate_token=""' in r.headers["set-cookie"] or "max-age=0" in r.headers["set-cookie"].lower()
    c.cookies.clear()
    assert "app.js" not in c.get("/dashboard").text
    assert c.get("/v1/calls").status_code == 401


def test_static_assets_and_no_traversal() -> None:
    c = client()
    for name, kind in (("app.js", "javascript"), ("charts.js", "javascript"),
                       ("dashboard.css", "text/css")):
        r = c.get(f"/dashboard/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"], name
    for name in ("missing.js", "..%2F..%2Fcalls.py", "..%2Fdashboard.py", ".hidden.js",
                 "app.py"):
        assert c.get(f"/dashboard/static/{name}").status_code == 404, name


def test_assets_ship_in_the_package() -> None:
    folder = resources.files("voxgate.api").joinpath("static", "dashboard")
    names = {p.name for p in folder.iterdir()}
    assert {"login.html", "app.html", "app.js", "charts.js", "dashboard.css"} <= names
    # No CDN or remote asset: the dashboard must work on an air-gapped node.
    for name in names:
        text = folder.joinpath(name).read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text, name
