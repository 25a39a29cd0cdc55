"""The WGS84 ellipsoid: its constants, the one ``pyproj.Geod``, and the unit-sphere bounds the exact searches rest on.

Public: :data:`GEOD`, :data:`A_M`, :data:`B_M`, :data:`E2`, :data:`M_MIN_M`, :data:`N_MIN_M`, :data:`N_MAX_M`,
:data:`R_MEAN_M`, :data:`METRES_PER_DEGREE`, :func:`unit_vectors`, :func:`central_angle`, :func:`chord_radius`,
:func:`planar_bound_deg`.

The fast exact searches of geoops and of the store (k nearest in :mod:`geoops.nearest`, pairs within a reach in
:mod:`geoops.coverage`, the KNN completeness test in :mod:`layers.read.analysis`) put geodetic lon/lat on the unit
sphere (or read them as planar degrees), search there, and let exact ``Geod.inv`` distances decide. They stay exact
because of one inequality, proved once here: on WGS84 the line element is
``ds^2 = M^2 dphi^2 + N^2 cos^2(phi) dlambda^2`` with ``M_min = a (1 - e^2) <= M <= N <= N_max = a / sqrt(1 - e^2)``
and ``N >= a``; on the unit sphere with the same coordinates it is ``dtheta^2 = dphi^2 + cos^2(phi) dlambda^2``.
So a geodesic of length g and the central angle s between its end points satisfy ``M_min * s <= g <= N_max * s``.

Examples
--------
>>> round(M_MIN_M, 3), round(N_MAX_M, 3)
(6335439.327, 6399593.626)
>>> unit_vectors([0.0, 90.0], [0.0, 0.0]).round(12).tolist()
[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pyproj import Geod

__all__ = ["GEOD", "A_M", "B_M", "E2", "M_MIN_M", "N_MIN_M", "N_MAX_M", "R_MEAN_M", "METRES_PER_DEGREE",
           "unit_vectors", "central_angle", "chord_radius", "planar_bound_deg"]

#: The WGS84 ellipsoid of every geodesic distance, azimuth and area in Sitroom.
GEOD = Geod(ellps="WGS84")
#: Semi-major axis, metres.
A_M: float = float(GEOD.a)
#: Semi-minor axis, metres.
B_M: float = float(GEOD.b)
#: First eccentricity squared.
E2: float = float(GEOD.es)
#: Smallest radius of curvature anywhere on WGS84 (the meridian's, at the equator): a (1 - e^2) = b^2 / a, metres.
M_MIN_M: float = A_M * (1.0 - E2)
#: Smallest prime-vertical radius of curvature (at the equator): a, metres.
N_MIN_M: float = A_M
#: Largest radius of curvature anywhere (at the poles): a / sqrt(1 - e^2), metres.
N_MAX_M: float = A_M / math.sqrt(1.0 - E2)
#: Mean radius (IUGG R1 = (2a + b) / 3), metres: for step sizes and tolerances, never for a distance.
R_MEAN_M: float = 6_371_008.8
#: Metres in a degree of latitude, roughly (for densification steps and tolerances, never for a distance).
METRES_PER_DEGREE: float = 111_320.0


def unit_vectors(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.float64]:
    """Geodetic lon/lat (degrees) put on the unit sphere, as an (n, 3) array of x, y, z.

    Written in place into one array: it is the hot path of the k-d tree searches.

    Examples
    --------
    >>> unit_vectors([0.0], [90.0]).round(12).tolist()
    [[0.0, 0.0, 1.0]]
    """
    lo = np.radians(np.asarray(lon, dtype=np.float64).ravel())
    la = np.radians(np.asarray(lat, dtype=np.float64).ravel())
    out = np.empty((lo.size, 3))
    cl = np.cos(la)
    np.cos(lo, out=out[:, 0])
    out[:, 0] *= cl
    np.sin(lo, out=out[:, 1])
    out[:, 1] *= cl
    np.sin(la, out=out[:, 2])
    return out


def central_angle(chord: ArrayLike) -> NDArray[np.float64]:
    """Central angle (radians) of a chord of the unit sphere; ``M_MIN_M * central_angle(chord)`` is a lower bound of
    the geodesic distance between the two points (see the module docstring).

    Examples
    --------
    >>> round(float(central_angle(2.0)), 12) == round(math.pi, 12)
    True
    """
    return np.asarray(2.0 * np.arcsin(np.minimum(np.asarray(chord, dtype=np.float64) / 2.0, 1.0)))


def chord_radius(distance_m: float) -> float:
    """Chord of the unit sphere that holds every pair of points within geodesic ``distance_m`` on WGS84.

    From ``g >= M_min * s``: a pair within d has a central angle of at most ``d / M_min``. A tiny relative margin
    absorbs floating-point error.

    Examples
    --------
    >>> chord_radius(10_000.0) > 10_000.0 / A_M
    True
    """
    theta = min(distance_m / M_MIN_M, math.pi)
    return 2.0 * math.sin(theta / 2.0) * (1.0 + 1e-9) + 1e-12


def planar_bound_deg(distance_m: float, lat: float) -> float:
    """Largest planar lon/lat distance (degrees) of any point within geodesic ``distance_m`` of latitude ``lat``.

    Along any path of length G from the query, ``|dphi| <= G / M_min`` and, since the latitude stays within
    ``|lat| + G / M_min``, ``|dlambda| <= G / (a cos(|lat| + G / M_min))`` (``N >= a``). The bound is the hypotenuse.

    Parameters
    ----------
    distance_m : float
        Geodesic distance, metres (>= 0).
    lat : float
        Latitude of the query point, degrees.

    Returns
    -------
    float
        Degrees; ``inf`` when the band reaches a pole.

    Examples
    --------
    >>> round(planar_bound_deg(10_000, 50.0), 4)  # 10 km at 50 N: up to ~0.14 degree of longitude
    0.1667
    """
    dphi = distance_m / M_MIN_M
    top = abs(math.radians(lat)) + dphi
    if top >= math.pi / 2:
        return math.inf
    dlam = distance_m / (N_MIN_M * math.cos(top))
    return math.degrees(math.hypot(dphi, dlam))
