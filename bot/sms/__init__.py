"""SMS: segment-aware rendering and gateways (Kannel, Twilio)."""
