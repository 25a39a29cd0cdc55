"""Building blocks shared by the pages (maps, KPI tiles ...). Layout only: no SQL, no geometry maths."""
