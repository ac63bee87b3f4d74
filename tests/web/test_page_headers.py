"""The pages' own HTTP answers: a CSP without inline script or style and nothing from another
host, nosniff, revalidation on every load, and no file outside the page folders."""

from __future__ import annotations

import httpx

from tests.gate_agent.central_proc import Central


async def test_pages_carry_their_security_headers(central: Central) -> None:
    async with httpx.AsyncClient(base_url=central.url, timeout=5) as http:
        for path in ("/", "/admin/", "/app/attendee/app.js", "/app/shared/style.css"):
            resp = await http.get(path)
            assert resp.status_code == 200, path
            csp = resp.headers["Content-Security-Policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.headers["Cache-Control"] == "no-cache"
        assert (
            (await http.get("/app/attendee/app.js"))
            .headers["Content-Type"]
            .startswith("text/javascript")
        )
        for bad in ("/app/../pyproject.toml", "/app/attendee/.hidden", "/app/other/x.js"):
            assert (await http.get(bad)).status_code == 404, bad
        redirect = await http.get("/admin", follow_redirects=False)
        assert redirect.headers["Location"] == "/admin/"
