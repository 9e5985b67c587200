"""Settings shared by the CLI, the API and scripts (environment variables prefixed ``GEO_CS_``)."""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from geo_cs.errors import InputError, NotFoundError

if TYPE_CHECKING:  # imported when asked for: settings are read by `geo-cs --help`, pandas is not
    from geo_cs.disclosure import DisclosureControl

_PACKAGE_DIR = Path(__file__).resolve().parent


def boundaries_dir() -> Path:
    """The ``boundaries/`` folder: geography registry, indicator specs, partnerships, demo bundle.

    In a source checkout it sits beside ``geo_cs/``; an installed wheel carries it inside the
    package (``geo_cs/boundaries``). ``GEO_CS_BOUNDARIES_DIR`` overrides both (an organisation's
    own registry, specs and partnerships).
    """
    return _boundaries_dir(os.environ.get("GEO_CS_BOUNDARIES_DIR"))


@lru_cache
def _boundaries_dir(configured: str | None) -> Path:
    if configured:
        return Path(configured)
    candidates = (_PACKAGE_DIR.parent / "boundaries", _PACKAGE_DIR / "boundaries")
    for candidate in candidates:
        if (candidate / "registry.yaml").exists():
            return candidate
    raise NotFoundError(
        f"geo-cs cannot find its boundaries/ folder (looked in {' and '.join(map(str, candidates))}); "
        "reinstall geo-cs (pip install geo-cs, or pip install -e . in a checkout) or set "
        "GEO_CS_BOUNDARIES_DIR"
    )


class Settings(BaseSettings):
    """Runtime settings. ``GEO_CS_DB=/data/geo-cs.duckdb geo-cs serve`` points every tool at a store."""

    model_config = SettingsConfigDict(env_prefix="GEO_CS_")

    db: Path = Path("geo-cs.duckdb")
    boundaries_dir: Path | None = None
    #: In-process caches of the web service (per worker): rendered tiles and per-measure values.
    #: Origins allowed to call the service from a browser page of their own (CORS); none by
    #: default. GEO_CS_CORS_ORIGINS='["https://maps.example.gov.uk"]', or '["*"]' for any.
    cors_origins: list[str] = []
    #: Origins whose pages may show the map's embed view (``/maps/{partnership}/embed``) in an
    #: iframe, a council intranet's say: the view's Content-Security-Policy becomes
    #: ``frame-ancestors 'self' <these>``; every other page may be framed by the service's own
    #: pages only. None by default. GEO_CS_FRAME_ANCESTORS='["https://intranet.example.gov.uk"]';
    #: ``https://*.example.gov.uk`` admits every subdomain, as CSP allows (:func:`frame_ancestor`).
    frame_ancestors: Annotated[list[str], NoDecode] = []
    tile_cache_items: int = 20_000
    tile_cache_mb: int = 256
    values_cache_items: int = 256
    values_cache_mb: int = 512
    #: Draw every partnership's default map page in the background after a start and after
    #: each update (each worker, one page at a time), so that a first visit is as fast as a
    #: repeat one; /health says ``ready`` once done. Unset: on for a server (the app built from
    #: the environment: ``geo-cs serve``, ``uvicorn geo_cs.api.app:create_app --factory``), off for an
    #: app built with explicit settings (tests, scripts). GEO_CS_WARM_MAPS=0/1: off/on.
    warm_maps: bool | None = None
    #: Disclosure control of everything published (API, tiles, maps, exports): counts rounded
    #: to the nearest ``disclosure_round_to``, rates of counts below ``disclosure_min_count``
    #: suppressed (see geo_cs.disclosure). Off by default; GEO_CS_DISCLOSURE_CONTROL=1.
    disclosure_control: bool = False
    disclosure_round_to: int = Field(5, ge=1)
    disclosure_min_count: int = Field(10, ge=0)
    #: Limits of the web service. A request whose body or URL is larger is refused (413/414);
    #: a response stops at max_response_mb (a streamed GeoJSON/CSV then ends early, logged);
    #: a database query running longer than query_timeout_s is interrupted (503).
    max_request_kb: int = Field(64, ge=1)
    max_url_kb: int = Field(8, ge=1)
    max_response_mb: int = Field(512, ge=1)
    query_timeout_s: float = Field(30.0, gt=0)
    #: A client must take each part of a large items page within send_timeout_s (between two
    #: writes, as nginx's send_timeout; not for the whole download): one that stops reading is
    #: cut off, its response left incomplete so that it knows, and what the page held is freed.
    send_timeout_s: float = Field(60.0, gt=0)
    #: Memory of the requests one worker answers at once (api.limits.MemoryBudget): each
    #: reserves what it may hold (a page of 10,000 items with geometry about 60 MB, a tile or a
    #: page of the map 1 MB) until its response is sent; one that does not fit waits up to
    #: memory_queue_s for room, then is refused (503 with Retry-After).
    memory_budget_mb: int = Field(512, ge=16)
    memory_queue_s: float = Field(10.0, ge=0)
    #: Key for the service's operations that change its state (POST /admin/…): sent as
    #: "Authorization: Bearer KEY" or "X-API-Key: KEY". Without a key those operations are off.
    api_key: SecretStr | None = None
    #: The service's public address (``https://maps.example.gov.uk/geo-cs``) when it runs
    #: behind a reverse proxy: absolute links in OGC responses and TileJSON are built from it
    #: rather than from the request's Host header. GEO_CS_BASE_URL, or ``serve --base-url``.
    base_url: str | None = Field(None, pattern=r"^https?://[^\s?#]+$")

    @field_validator("frame_ancestors", mode="before")
    @classmethod
    def _frame_ancestors(cls, value: object) -> list[str]:
        # read here rather than by pydantic-settings (NoDecode): its error for a value that is
        # not JSON names neither the variable nor the value
        return frame_ancestors(value)

    def disclosure(self) -> DisclosureControl | None:
        """The disclosure control to apply to published figures, or None when it is off."""
        if not self.disclosure_control:
            return None
        from geo_cs.disclosure import DisclosureControl

        return DisclosureControl(self.disclosure_round_to, self.disclosure_min_count)


# -- origins allowed to frame the embed view ----------------------------------------------------

#: An origin as CSP's ``frame-ancestors`` takes it (a host-source with no path): http or https,
#: a host name (``*.`` before it for its subdomains) or IPv4 address, an optional port.
_ORIGIN = re.compile(r"(?P<scheme>https?)://(?P<host>(\*\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
                     r"(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)(?::(?P<port>[0-9]{1,5}))?", re.I)
_SETTING = "GEO_CS_FRAME_ANCESTORS"
_EXAMPLE = "https://intranet.example.gov.uk"


def frame_ancestor(entry: object) -> str:
    """One entry of ``GEO_CS_FRAME_ANCESTORS`` as the header will carry it (scheme and host in
    lower case, one trailing ``/`` dropped), or a ``ValueError`` naming the setting and the
    entry, saying what to write instead.

    Each entry goes into a response header, so only an origin passes: a ``;`` or a space would
    add directives of its own. ``*`` alone (any site on the internet), a scheme alone
    (``https:``) and a path are refused; ``https://*.example.gov.uk`` (every subdomain) is
    accepted, as in CSP.

    >>> frame_ancestor("https://Intranet.Example.gov.uk/")
    'https://intranet.example.gov.uk'
    >>> frame_ancestor("https://intranet.example.gov.uk/maps")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: GEO_CS_FRAME_ANCESTORS: "https://intranet.example.gov.uk/maps" is not an origin: ...
    """
    shown = json.dumps(entry) if not isinstance(entry, str) else f'"{entry}"'
    if not isinstance(entry, str):
        raise ValueError(f'{_SETTING}: {shown} is not an origin: each entry is text such as "{_EXAMPLE}"')
    text = entry.strip()
    if text in ("*", "'*'", "https://*", "http://*"):
        raise ValueError(f"{_SETTING}: {shown} would let any site on the internet show the map inside "
                         f'its own page: list the origins of your own sites, e.g. "{_EXAMPLE}"')
    if text.lower() in ("'self'", "'none'"):
        raise ValueError(f"{_SETTING}: {shown} is not an origin: the service's own pages may always "
                         "frame the map, and an empty list allows no other site")
    found = _ORIGIN.match(text)
    if found is None:
        if re.fullmatch(r"(\*\.)?[A-Za-z0-9.-]+(:[0-9]+)?/?", text):
            raise ValueError(f'{_SETTING}: {shown} needs its scheme: "https://{text.rstrip("/")}"')
        raise ValueError(f"{_SETTING}: {shown} is not an origin: write https:// or http://, the host "
                         f'and an optional :port, e.g. "{_EXAMPLE}" (or "https://*.example.gov.uk" '
                         "for all its subdomains)")
    rest = text[found.end():]
    port = f":{found['port']}" if found["port"] else ""
    origin = f"{found['scheme'].lower()}://{found['host'].lower()}{port}"
    if found["port"] and not 0 < int(found["port"]) < 65536:
        raise ValueError(f"{_SETTING}: {shown} is not an origin: port {found['port']} is not 1 to 65535")
    if rest in ("", "/"):
        return origin
    if rest.startswith("/") and not re.search(r"[\s;,'\"]", rest):
        path = rest.split("?")[0].split("#")[0]
        raise ValueError(f'{_SETTING}: {shown} is not an origin: leave out the path "{path}" (a browser '
                         f'compares only the scheme, host and port of the page around the map): "{origin}"')
    raise ValueError(f"{_SETTING}: {shown} is not an origin: one origin per entry, such as "
                     f'"{_EXAMPLE}", with nothing after the host and port')


def frame_ancestors(value: object) -> list[str]:
    """``GEO_CS_FRAME_ANCESTORS`` read: a JSON list of origins as text (the environment), or a
    list (a program's own settings); each checked by :func:`frame_ancestor`, duplicates
    dropped. Empty or unset: none."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        try:
            value = json.loads(text)
        except ValueError:
            # a bare origin, most likely: shown as the list it should be
            example = text if text.lower().startswith("http") and '"' not in text else _EXAMPLE
            raise ValueError(f"{_SETTING} must be a JSON list of origins, e.g. "
                             f"'[\"{example}\"]'; got {text!r}") from None
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ValueError(f"{_SETTING} must be a JSON list of origins, e.g. '[\"{_EXAMPLE}\"]'; "
                         f"got {json.dumps(value)}")
    return list(dict.fromkeys(frame_ancestor(entry) for entry in value))


# -- reading the files people edit: YAML, and telling a binary file from a text one ----------------

#: Leading bytes of the files people give geo-cs by mistake for a text file (CSV, YAML): what
#: the file is, and what to do. A zip archive is told apart further by :func:`sniff_binary`.
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"PK\x03\x04", "a zip archive", "unzip it, or if it is an .xlsx workbook save the sheet as CSV"),
    (b"PK\x05\x06", "an empty zip archive", "it holds no file"),
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it first (gunzip)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it first (unxz)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "extract the file first"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Excel workbook (.xls) or other Office file",
     "save the sheet as CSV"),
    (b"PAR1", "a Parquet file", "export it as CSV"),
    (b"%PDF", "a PDF document", "find the data file the document came from"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", "is it the right file?"),
    (b"\xff\xd8\xff", "a JPEG image", "is it the right file?"),
    (b"SQLite format 3\x00", "an SQLite database (a GeoPackage?)",
     "boundaries are read with geo-cs ingest boundaries"),
)


class Sniffed(NamedTuple):
    """What a binary file is, and what its owner can do about it (for a message)."""

    what: str
    advice: str


def sniff_binary(head: bytes) -> Sniffed | None:
    r"""What a file is, from its first bytes (a few KB), when it is a known binary format, else
    None. Text in any encoding (UTF-16 included) gives None: the reader explains encodings.

    >>> sniff_binary(b"PK\x03\x04" + bytes(26) + b"[Content_Types].xml").what
    'an Excel workbook (.xlsx, a zip archive)'
    >>> sniff_binary(b"area_code,value\n") is None
    True
    """
    if head[8:12] == b"DUCK":
        return Sniffed("a DuckDB database", "a geo-cs database is opened with --db")
    if head.startswith(b"BZh") and head[4:10] == b"1AY&SY":
        return Sniffed("a bzip2-compressed file", "decompress it first (bunzip2)")
    for signature, what, advice in _SIGNATURES:
        if not head.startswith(signature):
            continue
        if signature == b"PK\x03\x04":
            if b"xl/" in head or b"[Content_Types].xml" in head:
                return Sniffed("an Excel workbook (.xlsx, a zip archive)", "save the sheet as CSV")
            if b"opendocument.spreadsheet" in head:
                return Sniffed("an OpenDocument spreadsheet (.ods, a zip archive)",
                               "save the sheet as CSV")
        return Sniffed(what, advice)
    return None


#: The largest YAML file geo-cs reads (registry, partnerships, district code changes): the
#: shipped ones are under 10 KB, and PyYAML parses about 1 MB a second.
MAX_YAML_BYTES = 1 << 20
#: Aliases (``*name``) one YAML document may use: the shipped files use none.
MAX_YAML_ALIASES = 100
#: Nodes the aliases of one document may add when expanded: each alias stands for a copy of
#: what it names, and code that walks, prints or hashes the data walks every copy.
MAX_YAML_ALIAS_NODES = 100_000


@lru_cache(maxsize=1)
def _limited_loader() -> type:
    """PyYAML's SafeLoader, counting aliases and what they expand to before anything is built.

    A "billion laughs" (nine levels of nine aliases, 455 bytes) builds quickly, as shared
    lists, but expands to 9^9 items as soon as anything walks it: geo-cs printing an entry hung
    90 s at 1.3 GB. Aliases are counted as they are read, and the document's size with every
    alias expanded is measured on the composed nodes (shared ones once, so it costs what the
    file holds), before a Python object is made. Defined on first use: yaml loads in ``import``.
    """
    import yaml

    class LimitedSafeLoader(yaml.SafeLoader):
        def __init__(self, stream: str, source: Path) -> None:
            super().__init__(stream)
            self.source = source
            self.aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_YAML_ALIASES:
                    line = self.peek_event().start_mark.line + 1
                    raise InputError(
                        f"{self.source}, line {line}: more than {MAX_YAML_ALIASES} aliases "
                        "(*name); geo-cs reads YAML with few or none: write the values out"
                    )
            return super().compose_node(parent, index)

        def compose_document(self) -> Any:
            node = super().compose_document()
            if self.aliases:
                self._check_expansion(node)
            return node

        def _check_expansion(self, root: Any) -> None:
            sizes: dict[int, int | None] = {}   # node id -> expanded size; None while inside it

            def size(node: Any) -> int:
                key = id(node)
                if key in sizes:
                    if sizes[key] is None:
                        line = node.start_mark.line + 1
                        raise InputError(f"{self.source}, line {line}: an alias refers to the "
                                         "collection it is in (a recursive structure)")
                    return sizes[key]
                sizes[key] = None
                if isinstance(node, yaml.SequenceNode):
                    total = 1 + sum(size(child) for child in node.value)
                elif isinstance(node, yaml.MappingNode):
                    total = 1 + sum(size(k) + size(v) for k, v in node.value)
                else:
                    total = 1
                # stop as soon as it is too large: the sums grow geometrically
                if total - len(sizes) > MAX_YAML_ALIAS_NODES:
                    raise InputError(
                        f"{self.source}: its aliases (*name) expand it by more than "
                        f"{MAX_YAML_ALIAS_NODES:,} values (a \"billion laughs\"?); write the "
                        "values out instead"
                    )
                sizes[key] = total
                return total

            size(root)

    return LimitedSafeLoader


def load_yaml(path: str | Path) -> Any:
    """The data of a YAML file people edit, read safely; None for an empty document.

    Contract: only plain data (PyYAML's safe loader: no Python objects); refused with an
    :class:`InputError` naming the file (and line where there is one): a file over
    :data:`MAX_YAML_BYTES`, a binary file (saying what it is: a zip archive, a gzip file…),
    text that is not UTF-8 (or UTF-16 with a byte-order mark), invalid YAML, more than
    :data:`MAX_YAML_ALIASES` aliases or aliases that expand it by more than
    :data:`MAX_YAML_ALIAS_NODES` values, recursive aliases, nesting too deep to read.
    A missing file is a :class:`NotFoundError`.
    """
    import yaml

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_YAML_BYTES + 1)   # no more, whatever the file (or a pipe) holds
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a YAML file") from None
    if len(data) > MAX_YAML_BYTES:
        raise InputError(f"{path}: larger than {MAX_YAML_BYTES // 2**20} MB, the most geo-cs reads "
                         "from a YAML file; is it the right file?")
    sniffed = sniff_binary(data[:4096])
    if sniffed is not None:
        raise InputError(f"{path} is {sniffed.what}, not a YAML text file: {sniffed.advice}")
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    if encoding != "utf-16" and b"\x00" in data:   # UTF-16 text holds NUL bytes; nothing else does
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise InputError(f"{path}, line {line}: not a YAML text file: it holds NUL bytes (a binary "
                         "file, or UTF-16 without a byte-order mark: save it as UTF-8)")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path}, line {line}: not a YAML text file: byte 0x{data[exc.start]:02x} "
                         "is not UTF-8 (a binary file, or text in another encoding: save it as "
                         "UTF-8)") from None
    loader = _limited_loader()(text, path)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from exc
    except RecursionError:
        raise InputError(f"{path}: nested too deeply to read (thousands of levels of lists or "
                         "mappings)") from None
    finally:
        loader.dispose()
