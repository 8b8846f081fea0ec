"""Alarm core: dispatch citizen responders and deployable AEDs to a cardiac arrest."""
