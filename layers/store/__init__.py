"""The store core: engine and sessions, models, migrations, settings, errors, vocabularies, the private
cluster, backup and accounts. Every other wing imports this one (and geoops) only.
"""
