"""The store core: engine and sessions, models, migrations, settings, errors, vocabularies, the private cluster,
backup, accounts, and the gazetteer of GeoNames places (read by the reference and render wings). Every other wing
imports this one (and geoops) only.
"""
