# Consul agent of the compose stack: one server that is also the catalog the
# services register in and the source of Prometheus's service discovery.
datacenter = "golden"
# Fixed, so that a re-created container is the same node, not a new one
# next to a dead one.
node_name  = "consul"
data_dir   = "/consul/data"
server     = true
bootstrap_expect = 1

# Reachable from the other containers; compose publishes the UI on 127.0.0.1 only.
client_addr = "0.0.0.0"
bind_addr   = "0.0.0.0"
advertise_addr = "{{ GetInterfaceIP \"eth0\" }}"

ui_config {
  enabled = true
}

# The stack has no service mesh and no DNS clients.
ports {
  grpc = -1
  dns  = -1
}

# Prometheus scrapes /v1/agent/metrics?format=prometheus. A retention above
# zero is what turns the Prometheus format on.
telemetry {
  prometheus_retention_time = "2m"
  disable_hostname          = true
}

# Instances that stay critical are removed by their own
# DeregisterCriticalServiceAfter; this reaps what a crashed agent leaves.
reconnect_timeout = "8h"

log_level = "INFO"
