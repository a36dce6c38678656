"""Development tools (registered only when DEMO_TOOLS is on): the patient phone simulator."""
