"""Cabinet agents: read an AED cabinet controller and keep the fleet told over MQTT."""
