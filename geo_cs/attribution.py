"""The licence line every map, tile set and export made from the shipped data must carry.

A module of its own, with no imports, so that everything that prints it (the API, the web map,
each export) can do so without loading what builds the demo.
"""

#: Every map and export built from this data must carry this line (Open Government Licence v3.0).
OGL_ATTRIBUTION = (
    "Contains National Statistics data © Crown copyright and database right. "
    "Contains OS data © Crown copyright and database right. "
    "Contains NRS data © Crown copyright. Open Government Licence v3.0."
)
