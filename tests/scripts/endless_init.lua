-- dns_init never returns: lua2pipe cannot answer HELO, and must say why in the log.
function dns_lookup()
  return {}
end

function dns_init()
  while true do end
end
