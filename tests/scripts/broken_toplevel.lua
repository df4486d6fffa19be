-- A script that raises at top level, on line 3 (tests/test_robustness.py).
local zones = {}
error("cannot read the zone database")
function dns_lookup() return zones end
