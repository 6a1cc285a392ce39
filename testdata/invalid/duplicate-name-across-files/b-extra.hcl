# Files are read in name order, so these second declarations are the duplicates.
provider "saas" { # ERROR: TW101
  zone   = zone.internet
  ranges = ["203.0.113.0/24"]
  https  = true
}

agents "remote" {
  zone    = zone.agents
  subnets = ["10.30.0.0/16"]
}

agents "floor" { # ERROR: TW101
  zone    = zone.agents
  subnets = ["10.31.0.0/16"]
}
