-- A script with a syntax error on line 4 (tests/test_robustness.py).
function dns_lookup(qtype, qname)
  return {}
end end
