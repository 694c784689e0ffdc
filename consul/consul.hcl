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

# Nothing is allowed that a token does not grant: anonymous requests see an
# empty catalog and no keys. The management token is CONSUL_MANAGEMENT_TOKEN
# from .env, which docker-compose.yml passes as tokens.initial_management
# (CONSUL_LOCAL_CONFIG), never in this file. `golden consul setup` (the
# consul-setup one-shot) then creates one token per service, one for
# Prometheus, one for the operator and the agent's own, which the agent
# keeps in its data folder (enable_token_persistence).
acl {
  enabled                  = true
  default_policy           = "deny"
  enable_token_persistence = true
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
