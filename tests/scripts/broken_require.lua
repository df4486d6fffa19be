-- A script whose require fails, on line 3 (tests/test_robustness.py).
local json = nil
json = require("lua2pipe_no_such_module")
function dns_lookup() return {} end
