"""QGIS as a client of Sitroom's OGC API, headless: run by Debian's python3 (which has ``qgis``), not the venv.

``python3 qgis_client.py BASE_URL TOKEN COLLECTION Z X Y`` loads ``COLLECTION`` through QGIS's OGC API - Features
provider ("oapif") and reads every feature; then adds the same layer's vector tiles (a vector tile layer on the OGC
Tiles URL template) and renders tile ``Z/X/Y`` (QGIS 3.22 reads vector tiles only by drawing them). Both send the
token as QGIS 3.22 can: an authentication configuration of method Basic whose password is the token (custom
headers came with QGIS 3.24). Run it with ``HOME`` set to a scratch folder: QGIS keeps that configuration in its
profile. Prints one JSON line: the features read, and the pixels the tile drew.
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (
    QgsApplication,
    QgsAuthMethodConfig,
    QgsCoordinateReferenceSystem,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsRectangle,
    QgsVectorLayer,
    QgsVectorTileLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

HALF = 20037508.342789244


def drawn_pixels(layer: QgsVectorTileLayer, z: int, x: int, y: int) -> int:
    """Render the layer over tile z/x/y (QGIS fetches and decodes the tile itself); count the pixels drawn."""
    size = 2 * HALF / 2 ** z
    extent = QgsRectangle(-HALF + x * size, HALF - (y + 1) * size, -HALF + (x + 1) * size, HALF - y * size)
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    settings.setExtent(extent)
    settings.setOutputSize(QSize(256, 256))
    settings.setBackgroundColor(QColor(0, 0, 0, 0))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    img = job.renderedImage()
    background = img.pixel(0, 0)
    return sum(1 for i in range(img.width()) for j in range(img.height()) if img.pixel(i, j) != background)


def basic_auth_config(token: str) -> str:
    """A QGIS authentication configuration (method Basic, the token as password); returns its id."""
    manager = QgsApplication.authManager()
    manager.setMasterPassword("sitroom-pytest-master", True)
    config = QgsAuthMethodConfig()
    config.setMethod("Basic")
    config.setName("sitroom")
    config.setConfig("username", "token")
    config.setConfig("password", token)
    manager.storeAuthenticationConfig(config)
    return config.id()


def main(base: str, token: str, collection: str, z: int, x: int, y: int) -> dict:
    header = f"authcfg={basic_auth_config(token)}"
    uri = f"url='{base}/ogc' typename='{collection}' {header}"
    features = QgsVectorLayer(uri, collection, "oapif")
    out = {"features_valid": features.isValid(), "features": []}
    if features.isValid():
        for f in features.getFeatures():
            g = f.geometry().asPoint() if f.hasGeometry() else None
            out["features"].append({"id": f.attribute("id") if "id" in f.fields().names() else f.id(),
                                    "name": f.attribute("name"), "kind": f.attribute("kind"),
                                    "xy": [g.x(), g.y()] if g is not None else None})
        out["crs"] = features.crs().authid()
    template = f"{base}/ogc/collections/{collection}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}"
    tiles = QgsVectorTileLayer(f"type=xyz&url={template}&zmin=3&zmax=18&{header}", "tiles")
    out["tiles_valid"] = tiles.isValid()
    if tiles.isValid():
        out["tile_pixels"] = drawn_pixels(tiles, z, x, y)
    return out


if __name__ == "__main__":
    app = QgsApplication([], False)
    app.initQgis()
    base, token, coll, z, x, y = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:7])
    try:
        print(json.dumps(main(base, token, coll, z, x, y), ensure_ascii=False))
    finally:
        app.exitQgis()
