"""Job specs: the YAML schema and the checks made before any work starts."""
