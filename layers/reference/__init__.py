"""Reference data: administrative regions, GeoNames places, population on H3 cells, the demo scenario.
"""
