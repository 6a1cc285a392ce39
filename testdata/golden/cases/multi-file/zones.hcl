zone "agents" { interface = "vlan50" }
zone "wan" { interface = "wan0" }
