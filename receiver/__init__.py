"""The revbridge receiver: webhooks from QuickBooks → Prefect events that trigger flows."""
