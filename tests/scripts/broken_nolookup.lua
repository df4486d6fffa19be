-- A script that loads but defines no dns_lookup (tests/test_robustness.py).
function dns_list() return {} end
