# tflint for every module, example and environment (tflint --recursive from here).
# The AWS ruleset plugin is not used: its releases come from GitHub, which our machines
# cannot reach, and its module is not on the Go module proxy. The bundled terraform
# ruleset runs with its "all" preset: naming, documented and typed variables and outputs,
# unused declarations, pinned module and provider versions.
config {
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "all"
}
