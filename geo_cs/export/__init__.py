"""Static exports for reports: charts (and, with the exports work, maps, profiles and PMTiles)."""
