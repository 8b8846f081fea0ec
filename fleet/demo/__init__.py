"""`aedfleet demo`: the whole system on one machine, with a simulated world around it.

The product runs as it does in production, as separate processes: an MQTT broker, the ingest
worker, cabinet agents and the alarm core with the console. Around it the demo plays what is not
there: RCC-1 cabinet controllers (Modbus TCP and serial, on real ports and ptys), the registry's
other cabinets, a 112 centre that reports cardiac arrests, and the responders' phones.
"""
