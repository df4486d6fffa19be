-- A script whose dns_init raises, on line 4 (tests/test_robustness.py).
function dns_lookup() return {} end
function dns_init()
  error("dns_init cannot connect")
end
