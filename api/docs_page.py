"""``/docs``: the API's documentation as a plain page drawn from its own OpenAPI definition.

FastAPI's default Swagger UI loads its script and styles from a CDN, so on a closed council
network it is a blank page (and it needs an inline script, which the service's
Content-Security-Policy forbids). This page needs neither: every operation with its parameters,
rendered server-side from ``app.openapi()``.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from geo_cs.attribution import OGL_ATTRIBUTION

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"), autoescape=True)


def _type(schema: dict) -> str:
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"] if s.get("type") != "null")
    kind = schema.get("type", "")
    if "enum" in schema:
        return f"{kind}: " + ", ".join(map(str, schema["enum"]))
    bounds = [f"{k} {schema[k]}" for k in ("minimum", "maximum") if k in schema]
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def operations(openapi: dict) -> list[dict]:
    """Every operation of an OpenAPI definition: tag, method, path, summary, parameters."""
    out = []
    for path, methods in openapi.get("paths", {}).items():
        for method, op in methods.items():
            out.append({
                "tag": (op.get("tags") or ["service"])[0], "method": method.upper(), "path": path,
                "summary": op.get("summary", ""), "description": op.get("description", ""),
                "parameters": [{"name": p["name"], "in": p["in"], "required": p.get("required", False),
                                "type": _type(p.get("schema", {})), "description": p.get("description", "")}
                               for p in op.get("parameters", [])],
            })
    return out


def render_docs(openapi: dict) -> str:
    info = openapi.get("info", {})
    return _TEMPLATES.get_template("docs.html").render(
        title=info.get("title", ""), version=info.get("version", ""),
        description=info.get("description", ""), operations=operations(openapi),
        attribution=OGL_ATTRIBUTION)
