"""/docs: Swagger UI from the installed package over /openapi.json, and what the document promises.

The page and each file it loads are fetched from the running web process, as a browser would; the
document's examples are validated by the models that validate real requests and answers.
"""

from __future__ import annotations

import re

import httpx
from pydantic import BaseModel

from web import responses
from web.openapi import OPERATIONS


async def test_docs_is_swagger_ui_whose_files_are_all_served_by_loket(api: httpx.AsyncClient) -> None:
    page = await api.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/docs/assets/swagger-ui-bundle.js" in loaded and "/docs/assets/swagger-ui.css" in loaded
    assert all(url.startswith("/docs/assets/") for url in loaded), "the page must load nothing from elsewhere"

    for url in loaded:
        answer = await api.get(url)
        assert answer.status_code == 200 and len(answer.content) > 0, url
        expected = {"js": "text/javascript", "css": "text/css", "png": "image/png"}[url.rsplit(".", 1)[1]]
        assert answer.headers["content-type"].startswith(expected), (url, answer.headers["content-type"])
    bundle = (await api.get("/docs/assets/swagger-ui-bundle.js")).text
    assert "SwaggerUIBundle" in bundle
    starter = (await api.get("/docs/assets/loket-docs.js")).text
    assert 'url: "/openapi.json"' in starter and "SwaggerUIBundle(" in starter


async def test_only_the_pages_files_are_served(api: httpx.AsyncClient) -> None:
    for name in ("swagger-editor-bundle.js", "oauth2-redirect.html", "..%2F..%2Fcore%2Fsettings.py", "index.html"):
        answer = await api.get(f"/docs/assets/{name}")
        assert answer.status_code == 404, name
        assert answer.json()["detail"]


async def test_the_reseller_callback_is_documented_as_a_webhook(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    callback = spec["webhooks"]["transaksi.selesai"]["post"]
    schema = callback["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/CallbackEvent"}
    event = spec["components"]["schemas"]["CallbackEvent"]
    assert event["properties"]["event"]["const"] == "transaksi.selesai"
    assert event["properties"]["data"] == {"$ref": "#/components/schemas/Purchase"}
    headers = {p["name"] for p in callback["parameters"] if p["in"] == "header"}
    assert headers == {"X-Loket-Delivery", "X-Loket-Timestamp", "X-Loket-Signature"}


async def test_answers_document_their_headers_and_the_headers_are_sent(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    assert set(spec["components"]["headers"]) == {"X-Request-ID", "Retry-After"}
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            for status, answer in operation["responses"].items():
                assert "X-Request-ID" in answer["headers"], (method, path, status)
                assert ("Retry-After" in answer["headers"]) == (status in ("429", "503")), (method, path, status)

    given = await api.get("/health", headers={"x-request-id": "docs-check-1"})
    assert given.headers["x-request-id"] == "docs-check-1"
    assert (await api.get("/saldo")).headers["x-request-id"]  # a refusal carries one too


def _documented_models() -> dict[str, type[BaseModel]]:
    models: dict[str, type[BaseModel]] = {"CallbackEvent": responses.CallbackEvent}
    for op in OPERATIONS.values():
        for candidate in (op.body, op.answer):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                models[candidate.__name__] = candidate
    return models


async def test_every_example_is_valid_for_the_model_that_checks_it(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    models = _documented_models()
    with_examples = {name: s["examples"] for name, s in spec["components"]["schemas"].items() if "examples" in s}
    assert {"BeliRequest", "RegisterRequest", "DepositRequest", "CreateTransaction", "Accepted"} <= set(with_examples)
    for name, examples in with_examples.items():
        for example in examples:
            models[name].model_validate(example)  # raises on an example that no longer fits
