"""The ``/static`` route: the map's scripts, styles and images, with cache lifetimes that fit.

* a fingerprinted name (``geo-cs/map.3f2a9c1b04de.js``, see :func:`geo_cs.maps.asset_url`) whose digest
  is the file's, ``?v=<digest>`` likewise, or a vendored file matching the sha256 in the
  vendor manifest: ``Cache-Control: public, max-age=31536000, immutable`` — a browser never asks
  again, and a changed file is named by a new URL;
* anything else (a plain name, or a fingerprint of an older version, which is answered with the
  current file so that a page cached before a deployment still works): ``public, max-age=60``
  with the file's ETag, so it is revalidated (a 304) after a minute.
"""

from __future__ import annotations

import os

from starlette.datastructures import QueryParams
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from geo_cs.maps import is_immutable_asset, split_fingerprint

#: One year: the longest lifetime RFC 9111 caches are asked to honour.
IMMUTABLE = "public, max-age=31536000, immutable"
#: What a name that does not pin its content gets: revalidated after a minute.
SHORT = "public, max-age=60"


class AssetFiles(StaticFiles):
    """:class:`StaticFiles` that also serves fingerprinted names and sets ``Cache-Control``."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        relative = path.replace(os.sep, "/")
        plain, digest = split_fingerprint(relative)
        if digest is not None and self.lookup_path(path)[1] is None:
            path = plain          # no file has that literal name: it is a fingerprint
        else:
            plain, digest = relative, QueryParams(scope.get("query_string", b"")).get("v")
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = IMMUTABLE if is_immutable_asset(plain, digest) else SHORT
        return response
