-- The geo-cs store. Every table a later layer (analysis, crosswalk, tiles, export) reads is here.
-- Geometries are kept twice: EPSG:27700 (British National Grid, metres) for areas and overlays,
-- EPSG:4326 lon/lat for the web. Bounding boxes are lon/lat, for bbox filters and TileJSON.

CREATE TABLE IF NOT EXISTS meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- One row per boundary set known to this database (copied from the registry when first used).
CREATE TABLE IF NOT EXISTS geography_sets (
    set_id        VARCHAR PRIMARY KEY,   -- e.g. lsoa2011
    geography     VARCHAR NOT NULL,      -- lsoa, datazone, ward, lad, wpc, ...
    vintage       INTEGER NOT NULL,      -- 2001, 2011, 2013, 2021, ...
    nations       VARCHAR[] NOT NULL,    -- E, W, S
    label         VARCHAR NOT NULL,
    expected_count INTEGER
);

-- One row per area. Geometry is NULL for codes known only from a lookup (e.g. LSOA 2001,
-- whose boundaries are not loaded) so that indicators on that geography can still be checked.
CREATE TABLE IF NOT EXISTS areas (
    set_id      VARCHAR NOT NULL,
    code        VARCHAR NOT NULL,
    name        VARCHAR,
    geography   VARCHAR NOT NULL,
    vintage     INTEGER NOT NULL,
    nation      VARCHAR,              -- E, W, S, N or NULL for GB-wide codes
    geom_27700  GEOMETRY,
    geom_4326   GEOMETRY,
    xmin DOUBLE, ymin DOUBLE, xmax DOUBLE, ymax DOUBLE,   -- lon/lat bounding box
    area_m2     DOUBLE,
    source      VARCHAR NOT NULL,     -- file the geometry (or code) came from
    ingest_id   INTEGER NOT NULL,
    PRIMARY KEY (set_id, code)
);

-- Links between geographies from official lookups: small area -> small area across vintages
-- (with the ONS change indicator U/S/M/X), small area -> ward -> district, district changes.
CREATE TABLE IF NOT EXISTS lookup_links (
    lookup_id   VARCHAR NOT NULL,     -- e.g. lsoa2011_lsoa2021
    from_set    VARCHAR NOT NULL,
    from_code   VARCHAR NOT NULL,
    to_set      VARCHAR NOT NULL,
    to_code     VARCHAR,              -- NULL for a terminated district
    change_ind  VARCHAR,              -- U, S, M, X for census small areas; merger/new_code/... for districts
    change_year INTEGER,
    ingest_id   INTEGER NOT NULL
);

-- Periods are typed: DWP quarters (Feb/May/Aug/Nov), calendar years, and index editions
-- whose data refer to an earlier year (IMD 2010 -> 2008 data).
CREATE TABLE IF NOT EXISTS periods (
    period_id  VARCHAR PRIMARY KEY,   -- 2006-05, 2019, imd2010
    kind       VARCHAR NOT NULL,      -- quarter, year, edition
    label      VARCHAR NOT NULL,      -- May 2006, 2019, IMD 2010 (2008 data)
    start_date DATE NOT NULL,
    end_date   DATE NOT NULL,
    data_year  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS indicators (
    indicator_id VARCHAR NOT NULL,    -- e.g. simd2016.employment_deprived
    source_id    VARCHAR NOT NULL,
    measure      VARCHAR NOT NULL,    -- employment_deprived, working_age_population, ...
    kind         VARCHAR NOT NULL,    -- count, rate, score, rank
    unit         VARCHAR,
    label        VARCHAR NOT NULL,
    set_id       VARCHAR NOT NULL,    -- one source can report several geographies (area, region, GB)
    source_title VARCHAR,
    publisher    VARCHAR,
    licence      VARCHAR,
    source_file  VARCHAR,
    scale        DOUBLE,              -- what the published value was multiplied by (fraction -> %)
    PRIMARY KEY (indicator_id, set_id)
);

CREATE TABLE IF NOT EXISTS observations (
    indicator_id VARCHAR NOT NULL,
    set_id       VARCHAR NOT NULL,
    code         VARCHAR NOT NULL,
    period_id    VARCHAR NOT NULL,
    value        DOUBLE,              -- NULL where the source suppressed it
    denominator  DOUBLE,
    status       VARCHAR,             -- the suppression marker seen, if any
    ingest_id    INTEGER NOT NULL,
    apportioned_share DOUBLE,         -- harmonised values: share that came through non-1:1 links
    PRIMARY KEY (indicator_id, set_id, code, period_id)
);

-- Crosswalks between geographies: the share (weight) of each source area's counts that goes to
-- each target area; the weights of one source sum to 1. link_type is the lookup's change
-- indicator (U, S, M, X), 'geometry' for overlay-only links, or 'chained'.
CREATE TABLE IF NOT EXISTS crosswalks (
    crosswalk_id VARCHAR NOT NULL,      -- e.g. lsoa2001->lsoa2011
    from_set     VARCHAR NOT NULL,
    from_code    VARCHAR NOT NULL,
    to_set       VARCHAR NOT NULL,
    to_code      VARCHAR NOT NULL,
    weight       DOUBLE NOT NULL,
    link_type    VARCHAR NOT NULL,
    method       VARCHAR NOT NULL,      -- single, population, area, equal, chained
    ingest_id    INTEGER NOT NULL
);

-- One row per ingest run, with its report, so every figure can be traced to a file.
CREATE TABLE IF NOT EXISTS ingests (
    ingest_id   INTEGER PRIMARY KEY,
    kind        VARCHAR NOT NULL,     -- boundaries, lookup, indicator
    sources     VARCHAR[] NOT NULL,
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    report      JSON
);

-- Boundaries again for vector tiles: Web Mercator (EPSG:3857) geometries simplified per zoom band
-- (geo_cs/tiles.py), rebuilt with the set at every boundary ingest. Bounds are EPSG:3857 metres.
CREATE TABLE IF NOT EXISTS tile_geoms (
    set_id VARCHAR NOT NULL,
    code   VARCHAR NOT NULL,
    band   TINYINT NOT NULL,
    name   VARCHAR,
    geom   GEOMETRY NOT NULL,
    area_m2 DOUBLE NOT NULL,           -- Web Mercator area of the unsimplified area
    xmin DOUBLE, ymin DOUBLE, xmax DOUBLE, ymax DOUBLE
);

-- Prepared tiles (geo-cs tiles prepare): each band geometry already cut to every tile it meets
-- (with the tile's buffer) and moved to tile units, so a tile is read, not clipped. Written per
-- set in (z, x, y) order, so a tile's rows share a row group; a boundary ingest of the set
-- deletes them (tiles are then clipped on the fly until prepared again).
CREATE TABLE IF NOT EXISTS tile_pieces (
    set_id  VARCHAR NOT NULL,
    z       TINYINT NOT NULL,
    x       INTEGER NOT NULL,
    y       INTEGER NOT NULL,
    code    VARCHAR NOT NULL,
    name    VARCHAR,
    area_m2 DOUBLE NOT NULL,
    geom    GEOMETRY NOT NULL          -- tile units: 0-4096 across the tile, y down
);

-- Analysis-ready panels (geo_cs/panels.py, geo-cs analyse prepare): one per source (counts,
-- denominator, set), one row per area and period with integer keys; dropped when the set's
-- observations are written again.
CREATE TABLE IF NOT EXISTS analysis_panel_index (
    panel_key        VARCHAR PRIMARY KEY,  -- the source, as JSON
    set_id           VARCHAR NOT NULL,
    codes            VARCHAR[] NOT NULL,
    periods          VARCHAR[] NOT NULL,
    denominator_note VARCHAR,
    token            VARCHAR NOT NULL,     -- unique per preparation: what processes cache it by
    n_areas          INTEGER NOT NULL,
    built_at         TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS analysis_panels (
    panel_key       VARCHAR NOT NULL,
    area            INTEGER NOT NULL,      -- position in the index's codes
    period          SMALLINT NOT NULL,     -- position in the index's periods (time order)
    count           DOUBLE,
    denominator     DOUBLE,
    rate            DOUBLE,
    estimated_share DOUBLE,
    den_var         DOUBLE
);

-- Prepared tiles' geometry already encoded as MVT (geo_cs/mvt.py), one row per tile: each
-- feature's code (its position in the set's sorted tile_geoms codes), area, and type and
-- geometry fields (concatenated in ``geometry``, feature k ending at ends[k]). A server attaches
-- the values of any indicator and period to them without a query; written by tiles prepare,
-- deleted with tile_pieces.
CREATE TABLE IF NOT EXISTS tile_features (
    set_id   VARCHAR NOT NULL,
    z        TINYINT NOT NULL,
    x        INTEGER NOT NULL,
    y        INTEGER NOT NULL,
    code_ids INTEGER[] NOT NULL,
    areas    DOUBLE[] NOT NULL,
    geometry BLOB NOT NULL,
    ends     INTEGER[] NOT NULL
);

-- The district code-history registry (geo_cs/district_codes.py, geo_cs/codehistory.py): which
-- district code replaced which, inferred from unchanged small-area membership of consecutive
-- district editions and read from the official changes list; rebuilt by every lookup and
-- boundaries ingest. User additions and vetoes (boundaries/code_changes.yaml) are applied when
-- it is read, not stored.
CREATE TABLE IF NOT EXISTS district_code_changes (
    old_code       VARCHAR NOT NULL,
    old_name       VARCHAR,
    new_code       VARCHAR NOT NULL,
    new_name       VARCHAR,
    kind           VARCHAR NOT NULL,   -- recode, merger, split
    year_from      INTEGER,            -- the edition last seen with the old code (NULL when dated)
    year_to        INTEGER NOT NULL,   -- the first edition (or official year) with the new code
    basis          VARCHAR NOT NULL,   -- inferred, official, official+inferred
    vetoed         BOOLEAN NOT NULL,
    shared_members INTEGER,            -- unchanged small areas in both the old and the new district
    share_of_old   DOUBLE,             -- ... as a share of the old district's comparable small areas
    share_of_new   DOUBLE,             -- ... and of the new district's
    area_change    DOUBLE,             -- area of the new district's small areas / the old's - 1
    evidence       VARCHAR NOT NULL,   -- which editions, small areas and lookups showed it
    note           VARCHAR,
    built_from     VARCHAR NOT NULL    -- the last lookup/boundaries ingest it was built after
);

-- Denominators geo-cs derived rather than read: count / rate × 100 from a published rate rounded
-- to rate_rounding points. Analysis widens the intervals of rates that use them (README, method
-- notes: derived denominators). One row per (count) indicator and set.
CREATE TABLE IF NOT EXISTS derived_denominators (
    indicator_id  VARCHAR NOT NULL,
    set_id        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,   -- e.g. count / ConstRate × 100
    rate_source   VARCHAR,            -- the rate column or measure it came from
    rate_rounding DOUBLE NOT NULL,    -- step the published rate is rounded to (points)
    ingest_id     INTEGER NOT NULL,
    PRIMARY KEY (indicator_id, set_id)
);

-- Survey estimates (the Annual Population Survey's employment rate, geo_cs.ingest.survey): the
-- published rate is the observation's value and its denominator the observation's denominator;
-- this table keeps what a survey adds. A rate whose interval is "*" (unreliable: sample 3-9)
-- keeps its value with reliability 'unreliable' and no half-width; a missing one ("-") is an
-- observation with a NULL value and reliability 'missing'. Never a number for a marker.
CREATE TABLE IF NOT EXISTS survey_estimates (
    indicator_id VARCHAR NOT NULL,
    set_id       VARCHAR NOT NULL,
    code         VARCHAR NOT NULL,
    period_id    VARCHAR NOT NULL,
    numerator    DOUBLE,              -- people (e.g. in employment), as published
    half_width   DOUBLE,              -- the published 95% confidence interval, +/- points
    reliability  VARCHAR,             -- NULL (reliable), 'unreliable' or 'missing'
    denominator_derived BOOLEAN NOT NULL,  -- numerator ÷ rate × 100 (the API's long form)
    ingest_id    INTEGER NOT NULL,
    PRIMARY KEY (indicator_id, set_id, code, period_id)
);

-- Postcode districts (outward codes: G51, NG7) and the areas their live postcodes are in, one
-- row per district, set and area, from a postcode directory (ONSPD/NSPL): the web map's search
-- finds a district with them (geo_cs.ingest.postcodes). Re-ingesting replaces them whole.
CREATE TABLE IF NOT EXISTS postcode_districts (
    district   VARCHAR NOT NULL,
    set_id     VARCHAR NOT NULL,
    code       VARCHAR NOT NULL,
    postcodes  INTEGER NOT NULL,
    ingest_id  INTEGER NOT NULL,
    PRIMARY KEY (district, set_id, code)
);
