"""GET /docs: Swagger UI over /openapi.json, with every file served by Loket itself.

The page's scripts and styles come from the swagger-ui-py package (its `static` folder), so the
docs work with no network, and the page's Content-Security-Policy allows nothing but this origin.
Only the files the page loads are served, by name: the package also carries an editor and source
maps that nobody needs here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response

PAGE_FOLDER = Path(__file__).with_name("docs_page")


def _swagger_ui_folder() -> Path:
    # Found without importing the package: its __init__ pulls in Jinja2 for handlers Loket does not use.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


SWAGGER_UI = _swagger_ui_folder()
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui.css": (SWAGGER_UI / "swagger-ui.css", "text/css"),
    "swagger-ui-bundle.js": (SWAGGER_UI / "swagger-ui-bundle.js", "text/javascript"),
    "favicon-32x32.png": (SWAGGER_UI / "favicon-32x32.png", "image/png"),
    "loket-docs.js": (PAGE_FOLDER / "loket-docs.js", "text/javascript"),
}
# Swagger UI sets inline styles on its elements; its scripts and the spec are all same-origin.
POLICY = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'"
PAGE = (PAGE_FOLDER / "index.html").read_bytes()


async def page(request: Request) -> Response:
    return Response(PAGE, media_type="text/html", headers={"Content-Security-Policy": POLICY})


async def asset(request: Request) -> Response:
    found = ASSETS.get(request.path_params["name"])
    if found is None:
        raise HTTPException(404, "no such file")
    path, media_type = found
    # The files change only with the package's version, i.e. with a deployment.
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"})
