"""Rendering: the offline basemap (data, tile renderer and cache) and static maps for reports.
"""
