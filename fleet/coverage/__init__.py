"""Coverage: where a cardiac arrest would get CPR and an AED within six minutes.

`grid` lays population-weighted cells over the PC4 areas, `model` computes the times to CPR
and to an AED per cell (fully, and incrementally when one AED changes), `placement` advises
where new AEDs would add most and which existing ones matter most, `service` feeds them from
the database, and `report` writes JSON, CSV and GeoJSON.
"""
