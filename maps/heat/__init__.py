"""maps.heat: the heatmaps and hotspots — events read as arrays, aggregated, tested for hotspots and shaped as layers.

`events` reads the events and their denominators (the one module here that queries the database), `aggregate`
counts them per H3 cell, grid, community or town, `weights` says which units neighbour which, `hotspots` runs Gi*
and the rate test, `emerging` classes hotspots over time, and `heatmap` puts these together for the API.
"""
