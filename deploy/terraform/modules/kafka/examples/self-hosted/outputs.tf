output "bootstrap_brokers" {
  description = "Bootstrap brokers for the clients."
  value       = module.kafka.bootstrap_brokers
}
